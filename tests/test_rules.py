"""Every rule: cases that make it fire and cases that must not, at each boundary.

Firing is read from the backend run (durable_rules), so a rule that another
overrides in the verdict is still shown to fire; the verdict-level effects of
precedence are tested in test_verdict.py.
"""
from __future__ import annotations

import pytest

from conftest import case, complaint, scans

D = "2026-05-03"


def c_at(t: str) -> str:
    return f"{D}T{t}+08:00"


def cs(**kw) -> dict:
    return case(complaint=complaint(**kw))


HUB = {"station": "HUB-1", "found": "prohibited", "reported": True, "isolated": True, "photographed": True,
       "registered": True, "repacked": True}


def hub(**kw) -> dict:
    return case(hub_handling=dict(HUB, **kw))


def level3(**kw) -> dict:
    return cs(issues=["insult"], **kw)


UC2 = [{"type": "collect", "station": "S-01", "at": "2024-02-29T10:00:00+08:00"}]

CASES: list[tuple[str, bool, str, dict]] = [
    # --- TB-1: reference arrival 11:59:59 is a morning arrival, 12:00:00 an afternoon one
    ("taobao.delivery-window.late", True, "morning arrival signed 17:00:01",
     case(scans=scans("2026-05-02T11:59:59+08:00", "2026-05-02T17:00:01+08:00"))),
    ("taobao.delivery-window.late", False, "morning arrival signed 17:00:00 exactly",
     case(scans=scans("2026-05-02T11:59:59+08:00", "2026-05-02T17:00:00+08:00"))),
    ("taobao.delivery-window.late", False, "12:00:00 arrival is afternoon: due next day 12:00",
     case(scans=scans("2026-05-02T12:00:00+08:00", "2026-05-02T17:30:00+08:00"))),
    ("taobao.delivery-window.late", True, "afternoon arrival signed next day 12:00:01",
     case(scans=scans("2026-05-02T12:00:00+08:00", "2026-05-03T12:00:01+08:00"))),
    ("taobao.delivery-window.late", True, "no arrival scan: previous dispatch 09:00 is the reference",
     case(scans=scans(None, "2026-05-02T17:00:01+08:00", "2026-05-02T09:00:00+08:00"))),
    ("taobao.delivery-window.late", True, "unsigned and as_of past the deadline",
     case(scans=scans(signed=None), as_of="2026-05-02T17:00:01+08:00")),
    ("taobao.delivery-window.late", False, "unsigned and as_of exactly at the deadline",
     case(scans=scans(signed=None), as_of="2026-05-02T17:00:00+08:00")),
    ("taobao.delivery-window.late", False, "standard product is not a Taobao waybill",
     case(product="standard", scans=scans(signed="2026-05-02T18:00:00+08:00"))),
    ("taobao.delivery-window.late", False, "neither scan: window cannot be computed",
     case(scans=scans(None, "2026-05-02T18:00:00+08:00", None))),
    # --- TB-2
    ("taobao.out-of-service-area.delay", True, "late and outside the service range",
     case(scans=scans(signed="2026-05-02T17:20:00+08:00"), collection={"in_service_area": False})),
    ("taobao.out-of-service-area.delay", False, "outside the range but on time",
     case(collection={"in_service_area": False})),
    # --- TB-3
    ("taobao.packaging.non-compliant", True, "non-compliant packaging, damaged",
     case(parcel={"packaging_compliant": False}, outcome={"damaged": True})),
    ("taobao.packaging.non-compliant", True, "non-compliant packaging, contaminated at a hub",
     case(parcel={"packaging_compliant": False}, hub_handling=dict(HUB, found="contaminating"))),
    ("taobao.packaging.non-compliant", False, "compliant packaging, damaged",
     case(outcome={"damaged": True})),
    ("taobao.packaging.non-compliant", False, "non-compliant packaging, no harm",
     case(parcel={"packaging_compliant": False})),
    # --- TB-4 (all three conditions; TB-7's "handled as lost" counts)
    ("taobao.unsigned-sender.lost", True, "unsigned sender, lost, complaint",
     case(collection={"sender_signed": False}, outcome={"lost": True}, complaint=complaint(issues=["lost"]))),
    ("taobao.unsigned-sender.lost", True, "unsigned sender, handled as lost by TB-7, complaint",
     case(collection={"sender_signed": False}, delivery={"signature_legible": False},
          outcome={"recipient_denies_receipt": True}, complaint=complaint())),
    ("taobao.unsigned-sender.lost", False, "unsigned sender, lost, no complaint",
     case(collection={"sender_signed": False}, outcome={"lost": True})),
    ("taobao.unsigned-sender.lost", False, "signed sender, lost, complaint",
     case(outcome={"lost": True}, complaint=complaint(issues=["lost"]))),
    # --- TB-5
    ("taobao.overcharge.refund", True, "charged 0.01 over, complaint",
     case(collection={"charged_cny": "12.01"}, complaint=complaint(issues=["overcharge"]))),
    ("taobao.overcharge.refund", False, "charged exactly the quote, complaint",
     case(complaint=complaint(issues=["overcharge"]))),
    ("taobao.overcharge.fine", True, "overcharge, complaint",
     case(collection={"charged_cny": "20.00"}, complaint=complaint())),
    ("taobao.overcharge.fine", False, "overcharge, no complaint", case(collection={"charged_cny": "20.00"})),
    ("taobao.overcharge.fine", False, "overcharge, a query is not a complaint",
     case(collection={"charged_cny": "20.00"}, complaint=complaint(kind="query"))),
    # --- TB-7
    ("taobao.scribbled-signature.denied", True, "scribbled and denied",
     case(delivery={"signature_legible": False}, outcome={"recipient_denies_receipt": True})),
    ("taobao.scribbled-signature.denied", False, "legible signature, denied",
     case(outcome={"recipient_denies_receipt": True})),
    # --- TB-8
    ("taobao.proxy-signature.unauthorised", True, "proxy, recipient not notified",
     case(delivery={"signed_by": "proxy", "recipient_notified": False})),
    ("taobao.proxy-signature.unauthorised", True, "locker, recipient did not consent",
     case(delivery={"signed_by": "locker", "recipient_consented": False})),
    ("taobao.proxy-signature.unauthorised", False, "proxy with notice and consent",
     case(delivery={"signed_by": "proxy"})),
    ("taobao.proxy-signature.unauthorised", False, "recipient signed",
     case(delivery={"recipient_notified": False, "recipient_consented": False})),
    ("taobao.proxy-signature.id-unchecked", True, "consented proxy, ID unchecked",
     case(delivery={"signed_by": "proxy", "proxy_id_checked": False})),
    ("taobao.proxy-signature.id-unchecked", False, "consented proxy, ID checked",
     case(delivery={"signed_by": "proxy"})),
    ("taobao.proxy-signature.id-unchecked", False, "locker has no ID to check",
     case(delivery={"signed_by": "locker", "proxy_id_checked": False})),
    # --- TB-9
    ("taobao.short-contents.intact-packaging", True, "short, intact, signed", case(outcome={"contents_short": True})),
    ("taobao.short-contents.intact-packaging", False, "short, intact, never signed",
     case(outcome={"contents_short": True}, scans=scans(signed=None))),
    ("taobao.short-contents.intact-packaging", False, "short, packaging damaged",
     case(outcome={"contents_short": True, "packaging_intact": False})),
    ("taobao.short-contents.damaged-packaging", True, "short, packaging damaged",
     case(outcome={"contents_short": True, "packaging_intact": False})),
    ("taobao.short-contents.damaged-packaging", False, "short, intact", case(outcome={"contents_short": True})),
    # --- OV-1: "over" is strictly greater
    ("oversize.three-oversize", True, "longest side 200.01 cm", case(parcel={"length_cm": "200.01"})),
    ("oversize.three-oversize", False, "longest side 200 cm, sum 250 cm",
     case(parcel={"length_cm": 200, "width_cm": 25, "height_cm": 25})),
    ("oversize.three-oversize", True, "sum of sides 250.01 cm",
     case(parcel={"length_cm": "150.01", "width_cm": 50, "height_cm": 50})),
    ("oversize.three-oversize", True, "63x63x63 = 250,047 cm3", case(parcel={"length_cm": 63, "width_cm": 63,
                                                                            "height_cm": 63})),
    ("oversize.three-oversize", False, "50x50x100 = 250,000 cm3", case(parcel={"length_cm": 100, "width_cm": 50,
                                                                              "height_cm": 50})),
    ("oversize.three-oversize", True, "50.01 kg", case(parcel={"weight_kg": "50.01"})),
    ("oversize.three-oversize", False, "50 kg", case(parcel={"weight_kg": 50})),
    # --- PC-1: one finding per step not recorded
    ("hub.prohibited-or-contaminating.not-reported", True, "not reported", hub(reported=False)),
    ("hub.prohibited-or-contaminating.not-reported", False, "reported", hub()),
    ("hub.prohibited-or-contaminating.not-isolated", True, "isolation not recorded",
     case(hub_handling={k: v for k, v in HUB.items() if k != "isolated"})),
    ("hub.prohibited-or-contaminating.not-isolated", False, "isolated", hub()),
    ("hub.prohibited-or-contaminating.not-photographed", True, "not photographed", hub(photographed=False)),
    ("hub.prohibited-or-contaminating.not-photographed", False, "photographed", hub()),
    ("hub.prohibited-or-contaminating.not-registered", True, "not registered", hub(registered=False)),
    ("hub.prohibited-or-contaminating.not-registered", False, "registered", hub()),
    ("hub.prohibited-or-contaminating.not-repacked", True, "not repacked", hub(repacked=False)),
    ("hub.prohibited-or-contaminating.not-repacked", False, "repacking not recorded (not applicable)",
     case(hub_handling={k: v for k, v in HUB.items() if k != "repacked"})),
    # --- UC
    ("uc.phone-query.answer", True, "answered 30 min 1 s", cs(kind="query", first_contact_at=c_at("08:30:01"))),
    ("uc.phone-query.answer", False, "answered at 30 min exactly", cs(kind="query", first_contact_at=c_at("08:30:00"))),
    ("uc.phone-query.answer", False, "online query", cs(kind="query", channel="online",
                                                        first_contact_at=c_at("08:00:10"))),
    ("uc.query-window.expired", True, "29 Feb 2024 -> filed 1 Mar 2025",
     case(scans=UC2, complaint=complaint(kind="query", received_at="2025-03-01T00:00:00+08:00"))),
    ("uc.query-window.expired", False, "29 Feb 2024 -> filed 28 Feb 2025",
     case(scans=UC2, complaint=complaint(kind="query", received_at="2025-02-28T23:59:59+08:00"))),
    ("uc.intake.prohibited", True, "prohibited item collected", case(parcel={"prohibited": True})),
    ("uc.intake.prohibited", False, "ordinary item", case()),
    # --- RG-1
    ("cs.chat.first-reply", True, "first reply at 31 s", cs(channel="online", first_contact_at=c_at("08:00:31"))),
    ("cs.chat.first-reply", False, "first reply at 30 s", cs(channel="online", first_contact_at=c_at("08:00:30"))),
    ("cs.chat.complex-feedback", True, "feedback at 5 min 1 s",
     cs(channel="online", complex=True, first_contact_at=c_at("08:00:10"), feedback_at=c_at("08:05:01"))),
    ("cs.chat.complex-feedback", False, "feedback at 5 min",
     cs(channel="online", complex=True, first_contact_at=c_at("08:00:10"), feedback_at=c_at("08:05:00"))),
    ("cs.phone.rings", True, "4 rings", cs(rings=4)),
    ("cs.phone.rings", False, "3 rings", cs(rings=3)),
    ("cs.phone.identity", True, "identity at 11 s",
     cs(connected_at=c_at("08:00:00"), identity_confirmed_at=c_at("08:00:11"))),
    ("cs.phone.identity", False, "identity at 10 s",
     cs(connected_at=c_at("08:00:00"), identity_confirmed_at=c_at("08:00:10"))),
    # --- RG-2
    ("cs.query-ticket.close", True, "closed at 4 h 1 s", cs(kind="query", channel="ticket",
                                                             closed_at=c_at("12:00:01"))),
    ("cs.query-ticket.close", False, "closed at 4 h", cs(kind="query", channel="ticket", closed_at=c_at("12:00:00"))),
    ("cs.complaint.contact", True, "contact at 2 h 1 s", cs(issues=["damage"], first_contact_at=c_at("10:00:01"),
                                                             closed_at=c_at("11:00:00"))),
    ("cs.complaint.contact", False, "contact at 2 h", cs(issues=["damage"], first_contact_at=c_at("10:00:00"),
                                                          closed_at=c_at("11:00:00"))),
    ("cs.complaint.major-contact", True, "major, contact at 31 min", cs(major=True, first_contact_at=c_at("08:31:00"))),
    ("cs.complaint.major-contact", False, "major, contact at 30 min", cs(major=True, first_contact_at=c_at("08:30:00"))),
    ("cs.ticket.close", True, "closed at 24 h 1 s", cs(issues=["damage"], closed_at="2026-05-04T08:00:01+08:00")),
    ("cs.ticket.close", False, "closed at 24 h", cs(issues=["damage"], closed_at="2026-05-04T08:00:00+08:00")),
    # --- RG-3..5: levels
    ("cs.level-1", True, "delay of 30 min", cs(issues=["delay"], delay_minutes=30)),
    ("cs.level-1", False, "delay of 31 min", cs(issues=["delay"], delay_minutes=31)),
    ("cs.level-1", True, "pressure marks", cs(issues=["pressure_marks"])),
    ("cs.level-2", True, "lost, worth 500.00", case(parcel={"declared_value_cny": "500.00"},
                                                     complaint=complaint(issues=["lost"]))),
    ("cs.level-2", False, "lost, worth 500.01", case(parcel={"declared_value_cny": "500.01"},
                                                      complaint=complaint(issues=["lost"]))),
    ("cs.level-2", True, "rude courier", cs(issues=["rude_courier"])),
    ("cs.level-3", True, "lost, worth 500.01", case(parcel={"declared_value_cny": "500.01"},
                                                     complaint=complaint(issues=["lost"]))),
    ("cs.level-3", False, "lost, worth 500.00", case(parcel={"declared_value_cny": "500.00"},
                                                      complaint=complaint(issues=["lost"]))),
    ("cs.level-3", True, "major complaint", cs(major=True)),
    ("cs.level-3", True, "physical conflict", cs(issues=["physical_conflict"])),
    ("cs.level-1.close", True, "level 1 closed at 30 min 1 s", cs(issues=["pressure_marks"],
                                                                   closed_at=c_at("08:30:01"))),
    ("cs.level-1.close", False, "level 1 closed at 30 min", cs(issues=["pressure_marks"], closed_at=c_at("08:30:00"))),
    ("cs.level-2.contact", True, "level 2 contact at 10 min 1 s", cs(issues=["rude_courier"],
                                                                      first_contact_at=c_at("08:10:01"))),
    ("cs.level-2.contact", False, "level 2 contact at 10 min", cs(issues=["rude_courier"],
                                                                   first_contact_at=c_at("08:10:00"))),
    ("cs.level-2.close", True, "level 2 closed at 2 h 1 s", cs(issues=["rude_courier"], closed_at=c_at("10:00:01"))),
    ("cs.level-2.close", False, "level 2 closed at 2 h", cs(issues=["rude_courier"], closed_at=c_at("10:00:00"))),
    ("cs.level-3.contact", True, "level 3 contact at 5 min 1 s", level3(first_contact_at=c_at("08:05:01"))),
    ("cs.level-3.contact", False, "level 3 contact at 5 min", level3(first_contact_at=c_at("08:05:00"))),
    ("cs.level-3.plan", True, "no plan, as_of past 1 h", level3()),
    ("cs.level-3.plan", False, "plan at 1 h", level3(plan_at=c_at("09:00:00"))),
    ("cs.level-3.close", True, "closed at 24 h 1 s", level3(closed_at="2026-05-04T08:00:01+08:00")),
    ("cs.level-3.close", False, "closed at 24 h", level3(closed_at="2026-05-04T08:00:00+08:00")),
]


@pytest.mark.parametrize("rule_id, fires, why, data", CASES, ids=[f"{r}:{w}" for r, _, w, _ in CASES])
def test_rule_fires_exactly_when_expected(engine, rule_id, fires, why, data):
    _, run = engine.run(data)
    assert (rule_id in run.fired) is fires, why


def test_every_rule_has_cases_that_fire_and_cases_that_do_not(engine):
    rules = {r.id for r in engine.program.rules}
    firing = {r for r, f, _, _ in CASES if f}
    quiet = {r for r, f, _, _ in CASES if not f}
    assert rules - firing == set(), "rules with no firing case"
    assert rules - quiet == set(), "rules with no non-firing case"
