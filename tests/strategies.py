"""Hypothesis strategies for valid cases built around the boundaries that matter."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import strategies as st

BASE_T = datetime(2026, 5, 2, 0, 0, tzinfo=timezone(timedelta(hours=8)))
OFFSETS = [timezone(timedelta(hours=h)) for h in (-11, -5, 0, 1, 5, 8, 9, 14)]


def iso(dt: datetime) -> str:
    return dt.isoformat()


seconds = st.integers(min_value=0, max_value=3 * 86400)
boundary_seconds = st.sampled_from([12 * 3600 - 1, 12 * 3600, 17 * 3600, 17 * 3600 + 1, 36 * 3600, 36 * 3600 + 1])
instant = st.one_of(seconds, boundary_seconds).map(lambda s: BASE_T + timedelta(seconds=s))
opt = lambda s: st.one_of(st.none(), s)  # noqa: E731
money = st.decimals(min_value=0, max_value=2000, places=2).map(str)
length = st.one_of(st.sampled_from(["200", "200.01", "63", "100", "50"]),
                   st.decimals(min_value="0.01", max_value=300, places=2).map(str))
bools = opt(st.booleans())


@st.composite
def cases(draw) -> dict:
    c: dict = {"waybill": "H" + str(draw(st.integers(0, 10**6)))}
    if draw(st.booleans()):
        c["product"] = draw(st.sampled_from(["taobao", "standard"]))
    c["as_of"] = iso(draw(instant) + timedelta(days=1))
    c["stations"] = {"sending": "S-1", "delivering": "D-1"}
    scans = []
    for kind, station in (("collect", "S-1"), ("dispatch", "S-1"), ("arrival", "D-1"), ("signed", "D-1")):
        if draw(st.booleans()):
            scans.append({"type": kind, "station": station, "at": iso(draw(instant))})
    c["scans"] = scans
    if draw(st.booleans()):
        c["parcel"] = {"length_cm": draw(length), "width_cm": draw(length), "height_cm": draw(length),
                       "weight_kg": draw(st.sampled_from(["50", "50.01", "8.5", "49.999"])),
                       "declared_value_cny": draw(st.sampled_from(["500.00", "500.01", "320"])),
                       "packaging_compliant": draw(bools), "prohibited": draw(bools)}
        insured = draw(opt(st.sampled_from(["0", "0.01", "160", "320", "500.01", "1999.99"])))
        if insured is not None:          # NR-3: insured below, at and above the declared value
            c["parcel"]["insured_value_cny"] = insured
    if draw(st.booleans()):
        c["collection"] = {"sender_signed": draw(bools), "in_service_area": draw(bools),
                           "quoted_cny": draw(money), "charged_cny": draw(money)}
    if draw(st.booleans()):
        c["delivery"] = {"signed_by": draw(st.sampled_from(["recipient", "proxy", "locker", "station", "other",
                                                            "courier"])),
                         "recipient_notified": draw(bools), "recipient_consented": draw(bools),
                         "proxy_id_checked": draw(bools), "signature_legible": draw(bools)}
    if draw(st.booleans()):
        c["outcome"] = {k: draw(bools) for k in ("lost", "damaged", "contents_short", "packaging_intact",
                                                 "recipient_denies_receipt")}
        loss = draw(opt(money))
        if loss is not None:
            c["outcome"]["loss_cny"] = loss
    if draw(st.booleans()):              # NR-4: a route, a promise, or both
        c["service"] = {"route": draw(opt(st.sampled_from(["same_city", "intra_province", "inter_province"]))),
                        "promised_by": draw(opt(instant.map(iso)))}
    if draw(st.booleans()):
        c["hub_handling"] = {"station": "HUB-1", "found": draw(st.sampled_from(["prohibited", "contaminating"])),
                             **{k: draw(bools) for k in ("reported", "isolated", "photographed", "registered",
                                                         "repacked")}}
    if draw(st.booleans()):
        received = draw(instant)
        after = lambda: opt(st.integers(0, 30 * 3600).map(lambda s: iso(received + timedelta(seconds=s))))  # noqa
        c["complaint"] = {
            "kind": draw(st.sampled_from(["query", "complaint"])),
            "channel": draw(st.sampled_from(["phone", "online", "ticket"])),
            "received_at": iso(received), "major": draw(bools),
            "issues": draw(st.lists(st.sampled_from(["delay", "pressure_marks", "lost", "rude_courier", "insult",
                                                     "physical_conflict", "overcharge", "damage",
                                                     "contents_short"]), unique=True, max_size=3)),
            "delay_minutes": draw(opt(st.integers(0, 120))),
            "first_contact_at": draw(after()), "plan_at": draw(after()), "closed_at": draw(after()),
        }
    return c


def _offset(minutes: int) -> timezone:
    return timezone(timedelta(minutes=minutes))


_zones = st.one_of(st.none(), st.integers(-1439, 1439).map(_offset), st.timezones())
_ends = [datetime.min, datetime(1, 1, 1, 23, 59, 59), datetime(1970, 1, 1), datetime(1999, 12, 31, 23, 59, 59),
         datetime(2000, 1, 1),
         datetime(2199, 12, 31, 23, 59, 59), datetime(2200, 1, 1), datetime(9999, 12, 30), datetime.max]
# Any instant datetime can hold, naive or in any UTC offset (±23:59): the placeholder years at both
# ends, where a day later or another zone steps outside datetime, drawn as often as the middle.
any_instant = st.one_of(
    st.builds(lambda dt, tz: dt.replace(tzinfo=tz), st.sampled_from(_ends), _zones),
    st.datetimes(min_value=datetime.min, max_value=datetime.max, timezones=_zones))


# Dated pack versions (tests/packs/dated/): `fees` 2025 is in force 2025-07-01..2025-12-31 and
# `fees` 2026 from 2026-01-01, both in Asia/Shanghai. Collection instants on both sides of each
# boundary, written in several offsets, so a case in another zone near midnight is judged by
# the pack's days, not its own.
SHANGHAI = timezone(timedelta(hours=8))
VERSION_BOUNDARIES = [datetime(2025, 7, 1, tzinfo=SHANGHAI), datetime(2026, 1, 1, tzinfo=SHANGHAI)]


@st.composite
def dated_cases(draw) -> dict:
    """A case from `cases()` whose collect scan lies near a version boundary (or none: no scans at all)."""
    c = draw(cases())
    edge = draw(st.sampled_from(VERSION_BOUNDARIES))
    at = edge + timedelta(seconds=draw(st.sampled_from([-86400, -1, 0, 1, 86399])))
    zone = draw(st.sampled_from([SHANGHAI, timezone.utc, timezone(timedelta(hours=9)), timezone(timedelta(hours=-5))]))
    scans = [s for s in c.get("scans", []) if s.get("type") != "collect"]
    if draw(st.integers(0, 9)):
        scans.insert(0, {"type": "collect", "station": "S-01", "at": at.astimezone(zone).isoformat()})
    c["scans"] = scans
    c.setdefault("collection", {}).update(quoted_cny="12.00", charged_cny=draw(st.sampled_from(["12.00", "12.01"])),
                                          sender_signed=draw(st.booleans()))
    return c


# Text from outside at its worst: lone surrogates, C0/C1 controls, ESC/OSC/CSI sequences, carriage returns,
# bidi overrides, and the odd long run (the text boundary and echo.py).
_HOSTILE_PIECES = st.sampled_from(["\ud800", "\udfff", "\x1b]0;owned\x07", "\x1b[2J", "\r", "\x9b", "\u202e",
                                   "\u2066", "\x00", "\x7f", "\ufeff", "k" * 300])
hostile_text = st.lists(st.one_of(_HOSTILE_PIECES, st.text(alphabet=st.characters(codec=None), max_size=8)),
                        min_size=1, max_size=4).map("".join)
