"""An unknown fact no value of which could change a rule's outcome no longer blocks the rule
(issue 24 item 7, slarules/packs/unknowns.py).

The property: with a finite fact removed from a case, the verdict either lists it missing, or
decides as the case would with EVERY value of it (checked by substituting each value). The
differential: the issue's case decides alike per case (durable_rules), in bulk (Polars) and on
the columnar batch path.
"""
from __future__ import annotations

import copy
import json
from datetime import timedelta

from hypothesis import HealthCheck, given, settings, strategies as st
from strategies import BASE_T, cases, iso

from slarules.batch.runner import adjudicate_rows
from slarules.packs.unknowns import SEPARATOR

ROUTES = ("same_city", "intra_province", "inter_province")
AS_OF = "2026-05-20T00:00:00+08:00"
PROPERTY = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.data_too_large])

# the issue's parcel: promised 4 May, no route, unsigned on 14 May (10 days on: past 7 × 24 h)
ISSUE_CASE = {
    "waybill": "BX7700000034", "product": "taobao", "timezone": "Asia/Shanghai",
    "as_of": "2026-05-14T09:00:00+08:00", "stations": {"sending": "HHHT-01", "delivering": "BT-03"},
    "collection": {"sender_signed": True, "in_service_area": True, "quoted_cny": "12.00", "charged_cny": "12.00"},
    "scans": [{"type": "collect", "station": "HHHT-01", "at": "2026-05-01T09:10:00+08:00"},
              {"type": "arrival", "station": "BT-03", "at": "2026-05-02T11:40:00+08:00"}],
    "service": {"promised_by": "2026-05-04T09:10:00+08:00"},
}


def decision(verdict) -> tuple:
    """What a verdict decides, without the text (a message quotes the route's own deadline)."""
    d = json.loads(verdict.to_json())
    return (sorted(f["rule"] for f in d["findings"]), d["classifications"], d.get("complaint_level"),
            d["fines_cny"], d["refunds_cny"], d["compensation_cny"])


def with_route(case: dict, route: str | None) -> dict:
    out = copy.deepcopy(case)
    out.setdefault("service", {})["route"] = route
    return out


def test_the_issue_case_is_a_total_delay_whatever_the_route(engine):
    verdict = engine.adjudicate(copy.deepcopy(ISSUE_CASE))
    fired = [f.rule for f in verdict.findings]
    assert "national.service.total-delay@2023" in fired
    assert "service.route" not in verdict.missing
    assert "lost" in verdict.classifications
    for route in ROUTES:
        assert decision(engine.adjudicate(with_route(ISSUE_CASE, route))) == decision(verdict)


def test_too_early_for_the_longest_allowance_lists_the_route_missing(engine):
    case = copy.deepcopy(ISSUE_CASE)
    case["as_of"] = "2026-05-08T09:00:00+08:00"      # past 3 × 24 h (same city), not past 7 × 24 h
    verdict = engine.adjudicate(case)
    assert "service.route" in verdict.missing
    assert "national.service.total-delay@2023" not in [f.rule for f in verdict.findings]
    case["as_of"] = "2026-05-06T09:00:00+08:00"      # before every route's grace: decided, not lost
    verdict = engine.adjudicate(case)
    assert "service.route" not in verdict.missing and "lost" not in verdict.classifications


def test_no_route_and_no_promise_stays_silent(engine):
    case = copy.deepcopy(ISSUE_CASE)
    case["service"] = {"promised_by": None}
    verdict = engine.adjudicate(case)
    assert not [f for f in verdict.findings if f.clause == "NR-4"] and "service.route" not in verdict.missing


def test_every_backend_decides_the_issue_case_alike(engine):
    chunk = [copy.deepcopy(ISSUE_CASE), with_route(ISSUE_CASE, "same_city")]
    chunk.append({**copy.deepcopy(ISSUE_CASE), "as_of": "2026-05-08T09:00:00+08:00"})
    durable = [v.to_json() for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="durable")]
    polars = [v.to_json() for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="polars")]
    assert durable == polars
    lines = [(i, json.dumps(c).encode()) for i, c in enumerate(chunk, start=1)]
    args = dict(source="cases.jsonl", raw=True, as_of=None, now=AS_OF, lang="en")
    bulk = adjudicate_rows(engine, lines, backend="polars", **args)
    reference = adjudicate_rows(engine, lines, backend="durable", **args)
    assert bulk.columns is not None            # the columnar pass judged the rows, no fallback
    assert bulk.verdicts == reference.verdicts
    assert "national.service.total-delay@2023" in bulk.verdicts[0][1]


def test_the_closed_comparisons_read_a_copy_per_route(engine):
    closures = {c.derived: c for c in engine.program.closures}
    due = closures["nr4_total_delay_due"]
    assert due.fact == "service.route" and [v for v, _ in due.copies] == list(ROUTES)
    assert all(SEPARATOR in name for _, name in due.copies)
    assert len({name for _, name in due.copies}) == 2       # intra- and inter-province share their figures


@st.composite
def routeless(draw) -> tuple[dict, str]:
    """A generated case with a promise (and a route), and an `as_of` anywhere up to 12 days on.

    Always a promise: without one, a missing route is no unknown but policy (NR-4 "no route and
    no promise: not applicable, silently", an `exists` test), which test_no_route_and_no_promise...
    holds."""
    case = draw(cases())
    case["service"] = {"route": draw(st.sampled_from(ROUTES)),
                       "promised_by": iso(BASE_T + timedelta(seconds=draw(st.integers(0, 3 * 86400))))}
    as_of = iso(BASE_T + timedelta(hours=draw(st.integers(0, 12 * 24))))
    return case, as_of


@PROPERTY
@given(routeless())
def test_a_removed_route_is_missing_or_changes_nothing(engine, drawn):
    case, as_of = drawn
    unknown = engine.adjudicate(with_route(case, None), as_of=as_of)
    if "service.route" in unknown.missing:
        return
    for route in ROUTES:
        assert decision(engine.adjudicate(with_route(case, route), as_of=as_of)) == decision(unknown), route


@PROPERTY
@given(st.lists(routeless(), min_size=1, max_size=12))
def test_routeless_chunks_agree_on_every_backend(engine, drawn):
    chunk = [with_route(c, None) | {"as_of": as_of} for c, as_of in drawn]
    durable = [v.to_json() if not isinstance(v, Exception) else repr(v)
               for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="durable")]
    polars = [v.to_json() if not isinstance(v, Exception) else repr(v)
              for _, v in engine.adjudicate_many(copy.deepcopy(chunk), backend="polars")]
    assert durable == polars
    lines = [(i, json.dumps(c).encode()) for i, c in enumerate(chunk, start=1)]
    args = dict(source="cases.jsonl", raw=True, as_of=None, now=AS_OF, lang="zh")
    bulk = adjudicate_rows(engine, lines, backend="polars", **args)
    assert bulk.verdicts == adjudicate_rows(engine, lines, backend="durable", **args).verdicts
