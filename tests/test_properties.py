"""Properties that must hold for every case, checked with Hypothesis."""
from __future__ import annotations

import copy
import re
from datetime import datetime, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT, case, scans
from slarules import SlaRulesError
from strategies import BASE_T, OFFSETS, cases, iso

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def shift(data, tz):
    """The same instants written in another UTC offset."""
    def conv(v):
        if isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT", v):
            return datetime.fromisoformat(v).astimezone(tz).isoformat()
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v
    return conv(data)


def late(engine, arrival, signed) -> bool:
    v = engine.adjudicate(case(scans=scans(iso(arrival), iso(signed))))
    return any(f.clause == "TB-1" for f in v.findings)


@FAST
@given(arrival=st.integers(0, 2 * 86400), a=st.integers(0, 2 * 86400), b=st.integers(0, 2 * 86400))
def test_signing_later_never_turns_late_into_on_time(engine, arrival, a, b):
    first, second = sorted((a, b))
    t = BASE_T + timedelta(seconds=arrival)
    if late(engine, t, t + timedelta(seconds=first)):
        assert late(engine, t, t + timedelta(seconds=second))


@FAST
@given(data=cases(), tz=st.sampled_from(OFFSETS))
def test_utc_offset_of_the_input_does_not_matter(engine, data, tz):
    assert engine.adjudicate(data).to_json() == engine.adjudicate(shift(data, tz)).to_json()


@FAST
@given(data=cases(), seed=st.randoms(use_true_random=False))
def test_scan_order_does_not_matter(engine, data, seed):
    shuffled = copy.deepcopy(data)
    seed.shuffle(shuffled["scans"])
    assert engine.adjudicate(data).to_json() == engine.adjudicate(shuffled).to_json()


# Every clause a finding cites is documented in the project's own policy catalogue.
POLICY_IDS = set(re.findall(r"^\| ([A-Z]{2}-\d+) \|", (ROOT / "docs" / "policy.md").read_text(encoding="utf-8"), re.M))


def test_every_catalogue_clause_is_documented(engine):
    assert set(engine.catalogue) <= POLICY_IDS


@FAST
@given(data=cases())
def test_money_clauses_and_determinism(engine, data):
    v = engine.adjudicate(data)
    assert v.to_json() == engine.adjudicate(copy.deepcopy(data)).to_json()
    totals: dict[str, Decimal] = {}
    for f in v.findings:
        assert Decimal(f.fine_cny) >= 0 and Decimal(f.refund_cny) >= 0
        if Decimal(f.fine_cny):
            key = f.station or f.party
            totals[key] = totals.get(key, Decimal(0)) + Decimal(f.fine_cny)
        assert f.clause in engine.catalogue
        assert f.clause in POLICY_IDS
    assert {k: Decimal(a) for k, a in v.fines_cny.items()} == totals
    assert Decimal(v.refunds_cny) == sum((Decimal(f.refund_cny) for f in v.findings), Decimal(0))


@FAST
@given(data=cases())
def test_kleene_evaluation_agrees_with_durable_rules(engine, data):
    """The three-valued evaluator (used for missing facts) and durable_rules agree on what fires."""
    from slarules.runtime import evaluate
    facts, run = engine.run(data)
    doc = engine.builder.final_doc(facts, run)
    for r in engine.program.rules:
        # a rule sees the chained facts of the strata before its own; all chained facts are
        # produced by strictly earlier strata, so the final document is what it saw.
        assert (evaluate.value(r.condition, doc) is True) == (r.id in run.fired), r.id


def _mutate(data: dict, draw) -> dict:
    bad = copy.deepcopy(data)
    choice = draw(st.integers(0, 7))
    if choice == 0:
        bad["unexpected"] = 1
    elif choice == 1:
        bad["parcel"] = {"length_cm": draw(st.sampled_from([-1, 0, "x", float("inf"), True, [1]]))}
    elif choice == 2:
        bad["scans"] = [{"type": "arrival", "station": "D-1", "at": draw(st.sampled_from(
            ["2026-02-30T10:00:00", "not a time", 12, None, "2026-13-01T00:00:00"]))}]
    elif choice == 3:
        bad["collection"] = {"charged_cny": draw(st.sampled_from(["1.234", "-1", "NaN", "abc", {}]))}
    elif choice == 4:
        bad["waybill"] = draw(st.sampled_from(["", None, 5, "has space"]))
    elif choice == 5:
        bad["complaint"] = {"kind": "praise"}
    elif choice == 6:
        bad["timezone"] = "Nowhere/Else"
    else:
        bad["scans"] = "not a list"
    return bad


@FAST
@given(data=cases(), draw=st.data())
def test_invalid_cases_raise_located_errors_only(engine, data, draw):
    bad = _mutate(data, draw.draw)
    try:
        engine.adjudicate(bad)
    except SlaRulesError as exc:
        assert exc.field, str(exc)
    else:
        raise AssertionError("an invalid case was accepted")
