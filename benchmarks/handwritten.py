"""The baseline: the shipped packs' clauses written by hand in plain Python.

What a competent developer would write without a rules engine: json.loads,
a few checks, if-statements with the thresholds inlined, json.dumps. It
validates only what it needs and renders short messages, so it is an honest
lower bound on the work per case. `agreement()` checks that it finds the same
rules, levels, fines and refunds as slarules on the benchmark's cases, so the
comparison is between two adjudicators of the same clauses.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

ZONES: dict[str, ZoneInfo] = {}
SHANGHAI = ZoneInfo("Asia/Shanghai")     # the national packs' time zone: their versions are days there
CENT = Decimal("0.01")
# The national layer (rules/national, NATIONAL.md): each pack's versions as (first day, last day, version).
MARKET = [(date(2024, 3, 1), date.max, "2024")]
REGULATION = [(date(2018, 5, 1), date(2025, 5, 31), "2019"), (date(2025, 6, 1), date.max, "2025")]
SERVICE = [(date(2012, 5, 1), date(2024, 3, 31), "2011"), (date(2024, 4, 1), date.max, "2023")]
ROUTE_LIMIT = {"same_city": timedelta(hours=24), "intra_province": timedelta(hours=72),
               "inter_province": timedelta(hours=72)}
TOTAL_DELAY = {"same_city": timedelta(days=3), "intra_province": timedelta(days=7), "inter_province": timedelta(days=7)}
# The liabilities each harm's compensation is paid by, in pack order (the first standing one pays).
LIABLE = {"delay": ["taobao.delivery-window.late", "taobao.out-of-service-area.delay"],
          "loss": ["taobao.scribbled-signature.denied", "taobao.proxy-signature.unauthorised"],
          "damage": ["taobao.packaging.non-compliant"],
          "shortage": ["taobao.packaging.non-compliant", "taobao.short-contents.intact-packaging"]}
COMPENSATION = ["lost.insured", "lost.uninsured", "total-delay.insured", "total-delay.uninsured",
                "damaged.insured", "damaged.uninsured", "short.insured", "short.uninsured"]
H = timedelta(hours=1)
M = timedelta(minutes=1)
OVERRIDES = {
    "taobao.out-of-service-area.delay": ["taobao.delivery-window.late"],
    "taobao.packaging.non-compliant": ["taobao.proxy-signature.unauthorised", "taobao.short-contents.intact-packaging",
                                       "taobao.short-contents.damaged-packaging"],
    "cs.query-ticket.close": ["cs.ticket.close"], "cs.level-2": ["cs.level-1"], "cs.level-3": ["cs.level-2", "cs.level-1"],
    "cs.level-1.close": ["cs.ticket.close"], "cs.level-2.contact": ["cs.complaint.contact"],
    "cs.level-2.close": ["cs.ticket.close"], "cs.level-3.contact": ["cs.complaint.contact"],
    "cs.level-3.close": ["cs.ticket.close"],
    "national.compensation.lost.insured": ["national.compensation.damaged.insured", "national.compensation.damaged.uninsured",
                                           "national.compensation.short.insured", "national.compensation.short.uninsured",
                                           "national.service.late"],
    "national.compensation.damaged.insured": ["national.compensation.short.insured", "national.compensation.short.uninsured"],
}
OVERRIDES["national.compensation.lost.uninsured"] = OVERRIDES["national.compensation.lost.insured"]
OVERRIDES["national.compensation.damaged.uninsured"] = OVERRIDES["national.compensation.damaged.insured"]
OVERRIDES["national.compensation.total-delay.insured"] = [f"national.compensation.{c}" for c in COMPENSATION
                                                          if not c.startswith("total-delay")]
OVERRIDES["national.compensation.total-delay.uninsured"] = OVERRIDES["national.compensation.total-delay.insured"]
CLAUSE = {"national.delivery.without-consent": "NR-1", "national.complaint.legal-handling": "NR-2",
          "national.service.late": "NR-4", "national.service.total-delay": "NR-4",
          **{f"national.compensation.{c}": "NR-3" for c in COMPENSATION},
          "taobao.delivery-window.late": "TB-1", "taobao.out-of-service-area.delay": "TB-2",
          "taobao.packaging.non-compliant": "TB-3", "taobao.unsigned-sender.lost": "TB-4",
          "taobao.overcharge.refund": "TB-5", "taobao.overcharge.fine": "TB-5",
          "taobao.scribbled-signature.denied": "TB-7", "taobao.proxy-signature.unauthorised": "TB-8",
          "taobao.proxy-signature.id-unchecked": "TB-8", "taobao.short-contents.intact-packaging": "TB-9",
          "taobao.short-contents.damaged-packaging": "TB-9", "oversize.three-oversize": "OV-1",
          "uc.phone-query.answer": "UC-1", "uc.query-window.expired": "UC-2", "uc.intake.prohibited": "UC-3"}


def version(versions, day):
    """The version of a dated national pack in force on `day`, or None."""
    if day is None:
        return None
    return next((v for first, last, v in versions if first <= day <= last), None)


def dec(value):
    return None if value is None else Decimal(str(value))


def least(a, b):
    return None if a is None or b is None else min(a, b)


def ts(value, zone):
    if value is None:
        return None
    t = datetime.fromisoformat(value)
    return t if t.tzinfo else t.replace(tzinfo=zone)


def late(due, actual, as_of) -> bool:
    if due is None:
        return False
    return actual > due if actual is not None else as_of > due


def adjudicate(case: dict, as_of: str | None) -> dict:
    """One case's verdict, judged at `as_of` when given (as `--as-of` and `Engine.adjudicate(as_of=)` do), else its own."""
    if not isinstance(case, dict) or not case.get("waybill"):
        raise ValueError("waybill is required")
    zone_name = case.get("timezone") or "Asia/Shanghai"
    zone = ZONES.get(zone_name) or ZONES.setdefault(zone_name, ZoneInfo(zone_name))
    as_of = ts(as_of or case.get("as_of"), zone)
    taobao = case.get("product") == "taobao"
    st = case.get("stations") or {}
    parcel = case.get("parcel")
    coll = case.get("collection") or {}
    dlv = case.get("delivery") or {}
    out = case.get("outcome") or {}
    hub = case.get("hub_handling")
    comp = case.get("complaint")
    scans = sorted(((ts(s["at"], zone), s["type"], s["station"]) for s in case.get("scans") or []))
    signed_at = next((t for t, k, _ in scans if k == "signed"), None)
    collected_at = next((t for t, k, _ in scans if k == "collect"), scans[0][0] if scans else None)
    delivering = st.get("delivering") or next((s for _, k, s in reversed(scans) if k == "arrival"), None)
    ref = None
    if delivering:
        ref = next((t for t, k, s in scans if k == "arrival" and s == delivering), None)
        if ref is None:
            limit = signed_at or as_of
            ref = next((t for t, k, s in reversed(scans) if k == "dispatch" and s != delivering and t <= limit), None)
    fired: dict[str, str] = {}
    classes: set[str] = set()

    # TB-1 / TB-2
    if taobao and ref is not None:
        local = ref.astimezone(zone)
        if local.time() < time(12):
            deadline = datetime.combine(local.date(), time(17), tzinfo=zone)
        else:
            deadline = datetime.combine(local.date() + timedelta(days=1), time(12), tzinfo=zone)
        if late(deadline, signed_at, as_of):
            minutes = -(-int(((signed_at or as_of) - deadline).total_seconds()) // 60)
            fired["taobao.delivery-window.late"] = f"signed {minutes} min after {deadline:%m-%d %H:%M}"
            classes.add("late")
            if coll.get("in_service_area") is False:
                fired["taobao.out-of-service-area.delay"] = "collected out of the service area"
    # The national layer: each pack's version in force on the collection day, in its time zone
    day = collected_at.astimezone(SHANGHAI).date() if collected_at is not None else None
    market, regulation, service = version(MARKET, day), version(REGULATION, day), version(SERVICE, day)
    charged = dec(coll.get("charged_cny"))
    total_due = None
    if service is not None:             # NR-4: the promised time, late delivery, total delay
        svc = case.get("service") or {}
        route = svc.get("route")
        promised = ts(svc.get("promised_by"), zone) or (
            collected_at + ROUTE_LIMIT[route] if route in ROUTE_LIMIT else None)
        if promised is not None and route in TOTAL_DELAY:
            total_due = promised + TOTAL_DELAY[route]
        elif promised is not None and route is None:     # a promise without a route: lost whatever the
            total_due = promised + max(TOTAL_DELAY.values())   # route once past the longest grace (issue 24.7)
        if promised is not None and signed_at is not None and signed_at > promised and charged is not None \
                and charged > 0:
            fired[f"national.service.late@{service}"] = "signed after the promised time: freight waived"
        if total_due is not None and signed_at is None and as_of > total_due:
            fired[f"national.service.total-delay@{service}"] = "total delay: handled as lost"
            classes.add("lost")
    # TB-7 before the rules that read "lost"
    if dlv.get("signature_legible") is False and out.get("recipient_denies_receipt") is True:
        fired["taobao.scribbled-signature.denied"] = "scribbled signature, receipt denied"
        classes.add("lost")
    if parcel is not None and parcel.get("packaging_compliant") is False and (
            out.get("damaged") is True or out.get("contents_short") is True
            or (hub or {}).get("found") == "contaminating"):
        fired["taobao.packaging.non-compliant"] = "non-compliant packaging"
    kind = comp.get("kind") if comp else None
    lost = out.get("lost") is True or "lost" in classes
    if coll.get("sender_signed") is False and kind == "complaint" and lost:
        fired["taobao.unsigned-sender.lost"] = "sender did not sign; fine 50.00"
    over = None
    if coll.get("charged_cny") is not None and coll.get("quoted_cny") is not None:
        over = Decimal(str(coll["charged_cny"])) - Decimal(str(coll["quoted_cny"]))
    if over is not None and over > 0 and kind == "complaint":
        fired["taobao.overcharge.refund"] = f"refund {over:.2f}"
        fired["taobao.overcharge.fine"] = "fine 100.00"
    signed_by = dlv.get("signed_by")
    if taobao and signed_by is not None and signed_by != "recipient" and (
            dlv.get("recipient_notified") is False or dlv.get("recipient_consented") is False):
        fired["taobao.proxy-signature.unauthorised"] = "signed by another without consent"
    if (taobao and signed_by == "proxy" and dlv.get("recipient_notified") is True
            and dlv.get("recipient_consented") is True and dlv.get("proxy_id_checked") is False):
        fired["taobao.proxy-signature.id-unchecked"] = "proxy id not checked"
    if out.get("contents_short") is True:
        if signed_at is not None and out.get("packaging_intact") is True:
            fired["taobao.short-contents.intact-packaging"] = "contents short, packaging intact"
        if out.get("packaging_intact") is False:
            fired["taobao.short-contents.damaged-packaging"] = "not covered"
    if parcel is not None:
        sides = [parcel.get(k) for k in ("length_cm", "width_cm", "height_cm")]
        weight = parcel.get("weight_kg")
        big = False
        if None not in sides:
            s = [Decimal(str(x)) for x in sides]
            big = max(s) > 200 or sum(s) > 250 or s[0] * s[1] * s[2] > 250000
        if big or (weight is not None and Decimal(str(weight)) > 50):
            fired["oversize.three-oversize"] = "oversize"
            classes.add("oversize")
    if hub is not None and hub.get("found") is not None:
        for step in ("reported", "isolated", "photographed", "registered"):
            if hub.get(step) is not True:
                fired[f"hub.prohibited-or-contaminating.not-{step}"] = f"hub did not do: {step}"
        if hub.get("repacked") is False:
            fired["hub.prohibited-or-contaminating.not-repacked"] = "hub did not repack"
    if parcel is not None and parcel.get("prohibited") is True:
        fired["uc.intake.prohibited"] = "prohibited item collected"
    if market is not None and dlv.get("signed_by") in ("locker", "station", "courier") \
            and dlv.get("recipient_consented") is not True:
        fired[f"national.delivery.without-consent@{market}"] = "delivered without the user's consent"
    compensations: dict[str, tuple[Decimal, str]] = {}      # NR-3 rule -> (amount, harm)
    if regulation is not None:
        if kind == "complaint" and comp.get("received_at") is not None and late(
                ts(comp["received_at"], zone) + 7 * 24 * H, ts(comp.get("closed_at"), zone), as_of):
            fired[f"national.complaint.legal-handling@{regulation}"] = "not handled within 7 days"
        insured = dec(parcel.get("insured_value_cny")) if parcel else None
        declared = dec(parcel.get("declared_value_cny")) if parcel else None
        loss = dec(out.get("loss_cny"))
        cap = charged * 3 if charged is not None else None
        cover = "insured" if insured is not None and insured > 0 else "uninsured"
        whole = least(loss if loss is not None else declared, cap)
        if cover == "insured":
            whole, part = insured, (None if loss is None or declared is None else loss if declared <= insured
                                    else (loss * insured / declared).quantize(CENT, rounding=ROUND_HALF_UP))
        else:
            part = least(loss, cap)
        if out.get("lost") is True or "lost" in classes:
            compensations[f"lost.{cover}"] = (whole, "loss")
        if total_due is not None and signed_at is None and as_of > total_due:
            compensations[f"total-delay.{cover}"] = (whole, "delay")
        if out.get("damaged") is True:
            compensations[f"damaged.{cover}"] = (part, "damage")
        if out.get("contents_short") is True:
            compensations[f"short.{cover}"] = (part, "shortage")
        for name, (amount, _) in compensations.items():
            if amount is not None and amount > 0:
                fired[f"national.compensation.{name}@{regulation}"] = f"compensation {amount:.2f}"
    level = 0
    if comp is not None:
        channel, received = comp.get("channel"), ts(comp.get("received_at"), zone)
        contact, closed = ts(comp.get("first_contact_at"), zone), ts(comp.get("closed_at"), zone)
        due = (lambda d: received + d if received is not None else None)
        if channel == "online" and late(due(timedelta(seconds=30)), contact, as_of):
            fired["cs.chat.first-reply"] = "first reply late"
        if channel == "online" and comp.get("complex") is True and late(due(5 * M), ts(comp.get("feedback_at"), zone), as_of):
            fired["cs.chat.complex-feedback"] = "feedback late"
        if channel == "phone" and comp.get("rings") is not None and comp["rings"] > 3:
            fired["cs.phone.rings"] = "too many rings"
        connected = ts(comp.get("connected_at"), zone)
        if channel == "phone" and connected is not None and late(
                connected + timedelta(seconds=10), ts(comp.get("identity_confirmed_at"), zone), as_of):
            fired["cs.phone.identity"] = "identity late"
        if kind == "query" and channel == "ticket" and late(due(4 * H), closed, as_of):
            fired["cs.query-ticket.close"] = "query ticket closed late"
        if kind == "complaint" and late(due(2 * H), contact, as_of):
            fired["cs.complaint.contact"] = "contact late"
        if kind is not None and late(due(24 * H), closed, as_of):
            fired["cs.ticket.close"] = "ticket closed late"
        if kind == "query" and channel == "phone" and late(due(30 * M), contact, as_of):
            fired["uc.phone-query.answer"] = "query answered late"
        if collected_at is not None and received is not None:
            sent = collected_at.astimezone(zone).date()
            try:
                last = sent.replace(year=sent.year + 1)
            except ValueError:
                last = sent.replace(year=sent.year + 1, day=28)
            if received.astimezone(zone).date() > last:
                fired["uc.query-window.expired"] = "filed out of time"
        if kind == "complaint":
            issues = comp.get("issues") or []
            value = parcel.get("declared_value_cny") if parcel else None
            lostish = "lost" in issues or lost
            if ("delay" in issues and comp.get("delay_minutes") is not None and comp["delay_minutes"] <= 30) \
                    or "pressure_marks" in issues:
                fired["cs.level-1"] = "level 1"
                level = 1
            if (lostish and value is not None and Decimal(str(value)) <= 500) or "rude_courier" in issues:
                fired["cs.level-2"] = "level 2"
                level = 2
            if (lostish and value is not None and Decimal(str(value)) > 500) or "insult" in issues \
                    or "physical_conflict" in issues or comp.get("major") is True:
                fired["cs.level-3"] = "level 3"
                level = 3
        steps = {1: [("close", 30 * M, closed)], 2: [("contact", 10 * M, contact), ("close", 2 * H, closed)],
                 3: [("contact", 5 * M, contact), ("plan", H, ts(comp.get("plan_at"), zone)),
                     ("close", 24 * H, closed)]}
        for name, limit, actual in steps.get(level, []):
            if late(due(limit), actual, as_of):
                fired[f"cs.level-{level}.{name}"] = f"level {level} {name} late"
    overridden = {t for r in fired for t in OVERRIDES.get(r.partition("@")[0], ())}
    standing = {r.partition("@")[0] for r in fired} - overridden
    stations = {"delivering_station": delivering, "sending_station": st.get("sending")}

    def payer(harm):           # the first standing liability for the harm pays, else the network
        rule = next((r for r in LIABLE[harm] if r in standing), None)
        if rule is None:
            return "network", None
        party = "sending_station" if rule in ("taobao.out-of-service-area.delay", "taobao.packaging.non-compliant",
                                              "taobao.short-contents.intact-packaging") else "delivering_station"
        return party, stations[party]
    findings, fines, refunds, not_covered, owed = [], {}, Decimal("0.00"), [], {}
    for rule, message in sorted(fired.items()):
        rule, _, dated = rule.partition("@")
        if rule in overridden:
            continue
        if rule == "taobao.short-contents.damaged-packaging":
            not_covered.append(f"TB-9: {message}")
            continue
        clause = CLAUSE.get(rule) or ("PC-1" if rule.startswith("hub.") else "RG")
        station = (delivering if rule in ("taobao.delivery-window.late", "taobao.scribbled-signature.denied",
                                          "taobao.proxy-signature.unauthorised",
                                          "taobao.proxy-signature.id-unchecked")
                   else (hub or {}).get("station") if rule.startswith("hub.")
                   else None if rule.startswith(("cs.", "oversize", "uc.query")) else st.get("sending"))
        if rule.startswith("national.compensation."):
            amount, harm = compensations[rule.removeprefix("national.compensation.")]
            party, station = payer(harm)
            owed[station or party] = owed.get(station or party, Decimal("0.00")) + amount
        elif rule == "national.service.late":           # NR-4: the freight waived
            party, station = payer("delay")
            owed[station or party] = owed.get(station or party, Decimal("0.00")) + charged
        elif rule == "national.delivery.without-consent":
            station = delivering
        elif rule.startswith("national."):
            station = None
        rule = f"{rule}@{dated}" if dated else rule
        fine = Decimal("50.00") if rule == "taobao.unsigned-sender.lost" else \
            Decimal("100.00") if rule == "taobao.overcharge.fine" else Decimal("0.00")
        refund = over if rule == "taobao.overcharge.refund" else Decimal("0.00")
        if fine:
            fines[station or "sending_station"] = fines.get(station or "sending_station", Decimal("0.00")) + fine
        refunds += refund
        findings.append({"clause": clause, "rule": rule, "station": station, "fine_cny": f"{fine:.2f}",
                         "refund_cny": f"{refund:.2f}", "message": message})
    return {"waybill": case["waybill"], "findings": findings, "classifications": sorted(classes),
            "complaint_level": level or None, "fines_cny": {k: f"{v:.2f}" for k, v in sorted(fines.items())},
            "refunds_cny": f"{refunds:.2f}", "compensation_cny": {k: f"{v:.2f}" for k, v in sorted(owed.items())},
            "not_covered": not_covered}


def run_file(source: str, target: str, as_of: str) -> tuple[int, int]:
    """JSONL in, JSONL out, bad rows to target + '.errors': the same job as `slarules batch`."""
    good = bad = 0
    with open(source, encoding="utf-8") as src, open(target, "w", encoding="utf-8") as out, \
            open(target + ".errors", "w", encoding="utf-8") as err:
        for n, line in enumerate(src, start=1):
            if not line.strip():
                continue
            try:
                verdict = adjudicate(json.loads(line), as_of)
            except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
                err.write(json.dumps({"line": n, "error": str(exc)}, ensure_ascii=False) + "\n")
                bad += 1
                continue
            out.write(json.dumps(verdict, ensure_ascii=False) + "\n")
            good += 1
    return good, bad


def agreement(cases: list[dict], engine, as_of: str) -> tuple[int, int]:
    """(agreeing, compared): findings, level, fines, refunds and compensation, on cases both accept."""
    from slarules.errors import SlaRulesError
    same = total = 0
    for case in cases:
        try:
            ours = engine.adjudicate(case, as_of=as_of)
            theirs = adjudicate(case, as_of)
        except (SlaRulesError, ValueError, KeyError, TypeError, ArithmeticError):
            continue
        total += 1
        same += ({f.rule for f in ours.findings} == {f["rule"] for f in theirs["findings"]}
                 and ours.complaint_level == theirs["complaint_level"] and ours.fines_cny == theirs["fines_cny"]
                 and ours.refunds_cny == theirs["refunds_cny"] and ours.compensation_cny == theirs["compensation_cny"])
    return same, total
