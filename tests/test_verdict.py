"""Verdict-level behaviour: precedence, chaining, money, missing facts, messages, shape."""
from __future__ import annotations

import json
from decimal import Decimal

import pytest

from conftest import EXAMPLES, case, complaint, scans
from slarules import CaseError, load_case

# What each shipped example must yield: (rules in the verdict, fines, refunds, level, missing).
EXPECTED = {
    "clean": (set(), {}, "0.00", None, []),
    "contract-example": ({"cs.level-1"}, {}, "0.00", 1, []),
    "tb1-late": ({"taobao.delivery-window.late"}, {}, "0.00", None, []),
    "tb1-unsigned-overdue": ({"taobao.delivery-window.late"}, {}, "0.00", None, []),
    "tb1-missing-arrival": (set(), {}, "0.00", None, ["reference_arrival"]),
    "tb2-out-of-area": ({"taobao.out-of-service-area.delay"}, {}, "0.00", None, []),
    # damaged without the loss established: NR-3 cannot compute the compensation
    "tb3-packaging": ({"taobao.packaging.non-compliant"}, {}, "0.00", None, ["outcome.loss_cny"]),
    "tb4-unsigned-sender-lost": ({"taobao.unsigned-sender.lost", "cs.level-2", "national.compensation.lost.uninsured@2025"},
                                 {"HHHT-01": "50.00"}, "0.00", 2, []),
    "tb5-overcharge": ({"taobao.overcharge.fine", "taobao.overcharge.refund"}, {"HHHT-01": "100.00"}, "3.00",
                       None, []),
    "tb7-scribbled-signature": ({"taobao.scribbled-signature.denied", "taobao.unsigned-sender.lost", "cs.level-2",
                                 "national.compensation.lost.uninsured@2025"}, {"HHHT-01": "50.00"}, "0.00", 2, []),
    "tb8-proxy-no-consent": ({"taobao.proxy-signature.unauthorised"}, {}, "0.00", None, []),
    "tb8-proxy-id-unchecked": ({"taobao.proxy-signature.id-unchecked"}, {}, "0.00", None, []),
    "tb9-short-contents": ({"taobao.short-contents.intact-packaging"}, {}, "0.00", None, ["outcome.loss_cny"]),
    "ov1-oversize": ({"oversize.three-oversize"}, {}, "0.00", None, []),
    "pc1-hub-handling": ({"hub.prohibited-or-contaminating.not-isolated",
                          "hub.prohibited-or-contaminating.not-photographed"}, {}, "0.00", None, []),
    "uc1-phone-query": ({"uc.phone-query.answer"}, {}, "0.00", None, []),
    "uc2-out-of-time": ({"uc.query-window.expired"}, {}, "0.00", None, []),
    "uc3-prohibited": ({"uc.intake.prohibited"}, {}, "0.00", None, []),
    "rg1-online-chat": ({"cs.chat.first-reply"}, {}, "0.00", None, []),
    "rg2-query-ticket": ({"cs.query-ticket.close"}, {}, "0.00", None, []),
    "rg3-level1": ({"taobao.delivery-window.late", "cs.level-1", "cs.level-1.close"}, {}, "0.00", 1, []),
    "rg4-level2": ({"cs.level-2", "cs.level-2.contact", "national.compensation.lost.uninsured@2025"}, {}, "0.00", 2, []),
    "rg5-level3": ({"cs.level-3", "cs.level-3.contact", "cs.level-3.plan"}, {}, "0.00", 3, []),
    "nr1-locker-no-consent": ({"national.delivery.without-consent@2024"}, {}, "0.00", None, []),
    "nr3-lost-insured": ({"taobao.scribbled-signature.denied", "national.compensation.lost.insured@2025"}, {}, "0.00",
                         None, []),
    "nr4-total-delay": ({"taobao.delivery-window.late", "cs.level-2", "cs.level-2.close",
                         "national.complaint.legal-handling@2025", "national.service.total-delay@2023",
                         "national.compensation.total-delay.uninsured@2025"}, {}, "0.00", 2, []),
}
# What the customer is owed (NR-3, NR-4), by payer: the station the network's packs hold liable, else the network.
COMPENSATION = {"tb4-unsigned-sender-lost": {"network": "36.00"}, "tb7-scribbled-signature": {"BT-03": "36.00"},
                "rg4-level2": {"network": "36.00"}, "nr3-lost-insured": {"BT-03": "300.00"},
                "nr4-total-delay": {"BT-03": "36.00"}}


def test_every_example_is_expected():
    assert {p.stem for p in EXAMPLES.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_example_verdicts(engine, name):
    rules, fines, refunds, level, missing = EXPECTED[name]
    v = engine.adjudicate(load_case(str(EXAMPLES / f"{name}.yaml")))
    assert {f.rule for f in v.findings} == rules
    assert v.fines_cny == fines
    assert v.refunds_cny == refunds
    assert v.complaint_level == level
    assert v.missing == missing
    assert v.compensation_cny == COMPENSATION.get(name, {})


def test_contract_tb1_finding(engine):
    v = engine.adjudicate(case(scans=scans(signed="2026-05-02T17:20:00+08:00")))
    [f] = v.findings
    assert (f.clause, f.kind, f.party, f.station) == ("TB-1", "liability", "delivering_station", "D-01")
    assert f.facts["reference_arrival"] == "2026-05-02T11:40:00+08:00"
    assert f.facts["delivery_deadline"] == "2026-05-02T17:00:00+08:00"
    assert f.facts["delivery_late_minutes"] == 20
    assert "延误 20 分钟" in f.message and "D-01" in f.message
    en = engine.adjudicate(case(scans=scans(signed="2026-05-02T17:20:00+08:00")), lang="en").findings[0]
    assert "20 min late" in en.message


@pytest.mark.parametrize("signed, zh, en, minutes", [
    ("2026-05-02T17:00:01+08:00", "延误 1 秒，", "is 1 s late", 1),
    ("2026-05-02T17:20:05+08:00", "延误 20 分钟 5 秒，", "is 20 min 5 s late", 21),
    ("2026-05-02T17:00:00.25+08:00", "延误 0.25 秒，", "is 0.25 s late", 1),
    ("2026-05-02T18:30:00+08:00", "延误 90 分钟，", "is 90 min late", 90),     # whole minutes read as before
])
def test_a_delay_is_shown_exactly_not_rounded_up_to_a_minute(engine, signed, zh, en, minutes):
    c = case(scans=scans(signed=signed))
    [f] = engine.adjudicate(c).findings
    assert zh in f.message
    assert f.facts["delivery_late_minutes"] == minutes        # the wire's fact is unchanged: minutes, rounded up
    assert en in engine.adjudicate(c, lang="en").findings[0].message
    tb2 = engine.adjudicate(case(scans=scans(signed=signed), collection={"in_service_area": False})).findings[0]
    assert zh.rstrip("，") + "由发件站点" in tb2.message


def test_tb2_overrides_tb1(engine):
    v = engine.adjudicate(case(scans=scans(signed="2026-05-02T17:20:00+08:00"), collection={"in_service_area": False}))
    assert [(f.clause, f.party, f.station) for f in v.findings] == [("TB-2", "sending_station", "S-01")]


def test_tb3_overrides_other_liability_for_the_same_harm(engine):
    v = engine.adjudicate(case(parcel={"packaging_compliant": False}, outcome={"contents_short": True},
                               delivery={"signed_by": "proxy", "recipient_notified": False}))
    assert [f.clause for f in v.findings] == ["TB-3"]
    assert v.findings[0].facts["branches"] == ["contents_short"]


def test_strictest_contact_deadline_binds_and_names_its_clause(engine):
    # Level 2 contacted after 3 h breaches both RG-2 (2 h) and RG-4 (10 min): one breach, RG-4.
    v = engine.adjudicate(case(complaint=complaint(issues=["rude_courier"], first_contact_at="2026-05-03T11:00:00+08:00",
                                                   closed_at="2026-05-03T11:30:00+08:00")))
    contact = [f for f in v.findings if "contact" in f.rule]
    assert [f.clause for f in contact] == ["RG-4"]
    deadlines = {d.name: d for d in v.deadlines}
    assert deadlines["first_contact"].clause == "RG-4"
    assert deadlines["first_contact"].due == "2026-05-03T08:10:00+08:00"
    assert deadlines["first_contact"].status == "breached"
    assert deadlines["close"].clause == "RG-4" and deadlines["close"].status == "breached"


@pytest.mark.parametrize("closed_at, as_of, status", [
    (None, "2026-05-03T10:00:00+08:00", "open"),
    ("2026-05-03T20:00:00+08:00", "2026-05-04T10:00:00+08:00", "met"),
    (None, "2026-05-04T10:00:00+08:00", "breached"),
    ("2026-05-04T09:00:00+08:00", "2026-05-04T10:00:00+08:00", "breached"),
])
def test_a_level_3_close_deadline_cites_rg5_open_met_or_breached(engine, closed_at, as_of, status):
    # RG-2's 24 h close and RG-5's 24 h resolve fall at the same instant; RG-5's rule overrides
    # RG-2's, so the deadline is RG-5's before it is missed as well as after.
    c = case(complaint=complaint(issues=["insult"], first_contact_at="2026-05-03T08:03:00+08:00",
                                 plan_at="2026-05-03T08:30:00+08:00", closed_at=closed_at))
    close = {d.name: d for d in engine.adjudicate(c, as_of=as_of).deadlines}["close"]
    assert (close.clause, close.rule, close.status) == ("RG-5", "cs.level-3.close", status)


def test_highest_level_wins(engine):
    v = engine.adjudicate(case(complaint=complaint(issues=["delay", "rude_courier", "insult"], delay_minutes=10,
                                                   plan_at="2026-05-03T08:30:00+08:00")))
    assert v.complaint_level == 3
    assert [f.rule for f in v.findings if f.kind == "classification"] == ["cs.level-3"]


def test_oversize_lists_every_threshold_crossed(engine):
    v = engine.adjudicate(case(parcel={"length_cm": 210, "width_cm": 63, "height_cm": 63, "weight_kg": 51}))
    [f] = v.findings
    assert f.facts["branches"] == ["longest_side", "sum_of_sides", "volume", "weight"]
    assert v.classifications == ["oversize"]


def test_money_is_summed_per_station(engine):
    v = engine.adjudicate(case(collection={"sender_signed": False, "charged_cny": "15.50"}, outcome={"lost": True},
                               complaint=complaint(issues=["lost", "overcharge"])))
    assert v.fines_cny == {"S-01": "150.00"}
    assert v.refunds_cny == "3.50"
    assert sum(Decimal(f.fine_cny) for f in v.findings) == Decimal("150.00")


def test_missing_facts_are_reported_not_guessed(engine):
    v = engine.adjudicate(case(scans=[{"type": "signed", "station": "D-01", "at": "2026-05-02T16:20:00+08:00"}]))
    assert v.findings == [] and v.missing == ["reference_arrival"]
    v = engine.adjudicate(case(delivery={"signed_by": "proxy", "recipient_notified": True,
                                         "recipient_consented": None}))
    assert "delivery.recipient_consented" in v.missing


def test_absent_blocks_are_silent(engine):
    v = engine.adjudicate({"waybill": "ONLY1"}, lang="en")
    assert v.findings == [] and v.missing == []
    # the dated national packs choose a version by the collection instant: without scans, not covered
    assert [n.split(":")[0] for n in v.not_covered] == ["express_market", "express_regulation", "express_service"]
    assert all("no version can be chosen without the collection instant" in n for n in v.not_covered)


def test_not_covered_is_reported(engine):
    v = engine.adjudicate(case(outcome={"contents_short": True, "packaging_intact": False}))
    assert v.findings == [] and len(v.not_covered) == 1 and v.not_covered[0].startswith("TB-9")


def test_as_of_override_and_naive_time(engine):
    c = case(scans=scans(signed=None))
    assert engine.adjudicate(c, as_of="2026-05-02T16:00").findings == []
    assert [f.clause for f in engine.adjudicate(c, as_of="2026-05-02T17:00:01").findings] == ["TB-1"]
    with pytest.raises(CaseError):
        engine.adjudicate(c, as_of="yesterday")


def test_verdict_json_matches_contract_keys(engine):
    v = json.loads(engine.adjudicate(case()).to_json())
    assert list(v)[:11] == ["waybill", "as_of", "packs", "findings", "classifications", "complaint_level",
                            "fines_cny", "refunds_cny", "compensation_cny", "missing", "not_covered"]
    assert v["compensation_cny"] == {}
    assert v["packs"][0]["digest"].startswith("sha256:")


def test_pydantic_case_is_accepted(engine):
    c = load_case(str(EXAMPLES / "tb1-late.yaml"))
    assert engine.adjudicate(c).to_json() == engine.adjudicate(c.model_dump(mode="json")).to_json()
