"""The national layer with the network's packs: who pays a compensation is chained per harm.

The pack tests (rules/national/*.test.yaml) run the national packs alone, where the network
always pays. Here the shipped set (national beneath the network's packs) is loaded, so a
compensation's payer is the party a network rule holds liable for the same harm, after
precedence, and every backend must agree on it (NATIONAL.md NR-3, NR-4).
"""
from __future__ import annotations

import json
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slarules import Engine, PackError
from slarules.cli import main
from slarules.engine import default_pack_dirs

from conftest import case, complaint, scans

NATIONAL = default_pack_dirs()[0]


@pytest.fixture(scope="module")
def national() -> Engine:
    return Engine.load([NATIONAL])


def owed(engine: Engine, c: dict, **kw) -> dict:
    return engine.adjudicate(c, **kw).to_dict()["compensation_cny"]


def compensations(engine: Engine, c: dict) -> list[tuple[str, str, str | None, str]]:
    return [(f.rule, f.party, f.station, f.compensation_cny) for f in engine.adjudicate(c).findings
            if f.kind == "compensation"]


# The same harm, each way a network rule assigns it: (case, payer key, party).
SCRIBBLED_LOST = case(delivery={"signature_legible": False}, outcome={"recipient_denies_receipt": True})
PAYERS = {
    "TB-7 holds the delivering station liable for the loss": (SCRIBBLED_LOST, "D-01", "delivering_station",
                                                              "national.compensation.lost.uninsured@2025"),
    "TB-8 (no consent) holds the delivering station liable for the loss": (
        case(delivery={"signed_by": "proxy", "recipient_consented": False}, outcome={"lost": True}),
        "D-01", "delivering_station", "national.compensation.lost.uninsured@2025"),
    "TB-3 holds the sending station liable for the damage": (
        case(parcel={"packaging_compliant": False}, outcome={"damaged": True, "loss_cny": "50.00"}),
        "S-01", "sending_station", "national.compensation.damaged.uninsured@2025"),
    "TB-9 holds the sending station liable for the shortage": (
        case(outcome={"contents_short": True, "loss_cny": "20.00"}), "S-01", "sending_station",
        "national.compensation.short.uninsured@2025"),
    "TB-1 holds the delivering station liable for the delay": (
        case(service={"route": "same_city"}, scans=scans(signed="2026-05-02T17:00:01+08:00")),
        "D-01", "delivering_station", "national.service.late@2023"),
    "TB-2 moves the delay to the sending station": (
        case(service={"route": "same_city"}, collection={"in_service_area": False},
             scans=scans(signed="2026-05-02T17:00:01+08:00")),
        "S-01", "sending_station", "national.service.late@2023"),
}


@pytest.mark.parametrize("name", PAYERS)
def test_the_payer_is_the_party_liable_for_the_same_harm(engine, national, name):
    c, payer, party, rule = PAYERS[name]
    found = compensations(engine, c)
    assert [(r, p, s) for r, p, s, _ in found] == [(rule, party, payer)]
    assert list(owed(engine, c)) == [payer]
    # the national layer alone holds nobody liable: headquarters pays the same amount
    alone = compensations(national, c)
    if c is SCRIBBLED_LOST:       # alone, nothing classifies it lost (TB-7 does): nothing is owed
        assert alone == [] and owed(national, c) == {}
        return
    assert [(r, p, s) for r, p, s, _ in alone] == [(rule, "network", None)]
    assert owed(national, c) == {"network": found[0][3]}


def test_no_network_rule_for_the_harm_means_the_network_pays(engine):
    c = case(product="standard", outcome={"lost": True})
    assert owed(engine, c) == {"network": "36.00"}
    f = next(f for f in engine.adjudicate(c, lang="en").findings if f.kind == "compensation")
    assert f.party == "network" and f.station is None
    assert "paid by the network (headquarters)" in f.message


def test_liability_for_another_harm_does_not_pay(engine):
    """TB-1 answers for the delay, not for a loss: a lost, late parcel's compensation is the network's."""
    c = case(product="taobao", outcome={"lost": True}, scans=scans(signed="2026-05-02T17:00:01+08:00"))
    assert {f.rule for f in engine.adjudicate(c).findings} >= {"taobao.delivery-window.late"}
    assert owed(engine, c) == {"network": "36.00"}


def test_a_parcel_lost_through_total_delay_is_paid_for_the_delay(engine):
    """NR-4 classifies it lost, so RG-4 and TB-4 see a lost parcel; NR-3 pays it, for the delay (TB-1 overdue)."""
    c = case(collection={"sender_signed": False}, service={"route": "inter_province"},
             scans=scans(signed=None), as_of="2026-05-12T09:00:00+08:00",
             complaint=complaint(closed_at=None, received_at="2026-05-12T08:00:00+08:00",
                                 first_contact_at="2026-05-12T08:04:00+08:00"))
    v = engine.adjudicate(c)
    rules = {f.rule for f in v.findings}
    assert {"national.service.total-delay@2023", "national.compensation.total-delay.uninsured@2025",
            "taobao.delivery-window.late", "taobao.unsigned-sender.lost", "cs.level-2"} <= rules
    assert "national.compensation.lost.uninsured@2025" not in rules
    assert v.classifications == ["late", "lost"] and v.complaint_level == 2
    assert v.compensation_cny == {"D-01": "36.00"} and v.fines_cny == {"S-01": "50.00"}


def test_one_compensation_per_case_lost_first(engine):
    c = case(delivery={"signature_legible": False},
             outcome={"recipient_denies_receipt": True, "damaged": True, "contents_short": True, "loss_cny": "30.00"})
    assert [r for r, *_ in compensations(engine, c)] == ["national.compensation.lost.uninsured@2025"]
    assert owed(engine, c) == {"D-01": "30.00"}


def test_backends_agree_on_payers(engine):
    cases = [c for c, *_ in PAYERS.values()] + [case(product="standard", outcome={"lost": True})]
    per_case = [engine.adjudicate(c).to_json() for c in cases]
    for backend in ("polars", "durable"):
        got = [v.to_json() for _, v in engine.adjudicate_many(cases, backend=backend)]
        assert got == per_case, backend


AMOUNTS = st.decimals(min_value=0, max_value=100000, places=2, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(loss=AMOUNTS, insured=AMOUNTS, declared=AMOUNTS, charged=AMOUNTS,
       harm=st.sampled_from(["damaged", "contents_short"]))
def test_damage_and_shortage_amounts_follow_nr3(engine, loss, insured, declared, charged, harm):
    """insured: loss × min(1, insured ÷ declared), half up; uninsured: min(loss, 3 × freight)."""
    c = case(product="standard", parcel={"insured_value_cny": str(insured), "declared_value_cny": str(declared)},
             collection={"quoted_cny": str(charged), "charged_cny": str(charged)},
             outcome={harm: True, "loss_cny": str(loss), "packaging_intact": False})
    if insured > 0:
        share = loss if declared <= insured else (loss * insured / declared).quantize(Decimal("0.01"), "ROUND_HALF_UP")
    else:
        share = min(loss, 3 * charged)
    expected = {"network": f"{share:.2f}"} if share > 0 else {}
    assert owed(engine, c) == expected
    assert [v.to_json() for _, v in engine.adjudicate_many([c], backend="durable")] == [engine.adjudicate(c).to_json()]


def test_cli_adjudicates_with_the_national_layer_by_default(tmp_path, capsys):
    path = tmp_path / "case.json"
    path.write_text(json.dumps(SCRIBBLED_LOST), encoding="utf-8")
    assert main(["adjudicate", str(path), "--format", "json"]) == 0
    v = json.loads(capsys.readouterr().out)
    assert [p["name"] for p in v["packs"]][:3] == ["express_market", "express_regulation", "express_service"]
    assert v["compensation_cny"] == {"D-01": "36.00"}
    assert list(v)[7:10] == ["refunds_cny", "compensation_cny", "missing"]


@pytest.mark.parametrize("backend", ["polars", "durable"])
def test_cli_batch_gives_the_same_compensation(engine, tmp_path, backend):
    cases = [c for c, *_ in PAYERS.values()]
    for i, c in enumerate(cases):
        c["waybill"] = f"N{i}"
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert main(["batch", str(src), "-o", str(out), "--backend", backend, "--workers", "1"]) == 0
    got = {v["waybill"]: v["compensation_cny"] for v in map(json.loads, out.read_text().splitlines())}
    assert got == {c["waybill"]: owed(engine, c) for c in cases}
    assert all(len(v) == 1 and "network" not in v for v in got.values())


@pytest.mark.parametrize("then, words", [
    ("{kind: compensation, compensation_cny: '1.00'}", "needs `payer`"),
    ("{kind: compensation, payer: loss}", "needs `compensation_cny`"),
    ("{kind: compensation, payer: loss, compensation_cny: '1.00', party: hub}", "comes from `payer`"),
    ("{kind: liability, party: hub, payer: loss}", "belongs to a compensation rule"),
])
def test_a_malformed_compensation_rule_is_located(tmp_path, then, words):
    p = tmp_path / "p.yaml"
    p.write_text("pack: p\nversion: '1'\nrules:\n  - id: p.rule\n    clause: NR-3\n"
                 f"    then: {then}\n    message: {{zh: x, en: x}}\n", encoding="utf-8")
    with pytest.raises(PackError) as err:
        Engine.load([p])
    assert err.value.file.endswith("p.yaml") and err.value.line == 6, str(err.value)
    assert words in str(err.value)


def test_a_compensation_rule_comes_after_every_rule_that_decides_its_payer(engine):
    program = engine.program
    late = program.rule("national.service.late@2023")
    for rid in ("taobao.delivery-window.late", "taobao.out-of-service-area.delay"):
        assert program.rule(rid).stratum < late.stratum


@pytest.mark.parametrize("collected, version, nr2, nr3", [
    ("2025-05-31T23:59:59+08:00", "2019", "第二十八条", "第二十七条"),
    ("2025-06-01T00:00:00+08:00", "2025", "第二十九条", "第二十八条"),
])
def test_each_text_of_the_regulation_cites_its_own_articles(engine, collected, version, nr2, nr3):
    """The 2019 text and its second revision (reported to renumber by one) judge alike, citing their own article."""
    c = case(product="standard", outcome={"lost": True}, as_of="2025-07-01T09:00:00+08:00",
             scans=[{"type": "collect", "station": "S-01", "at": collected}],
             complaint=complaint(received_at="2025-06-10T08:00:00+08:00", first_contact_at="2025-06-10T08:04:00+08:00",
                                 closed_at="2025-06-17T08:00:01+08:00"))
    v = engine.adjudicate(c)
    found = {f.rule: f.message for f in v.findings}
    assert f"《快递暂行条例》{nr2}" in found[f"national.complaint.legal-handling@{version}"]
    assert f"《快递暂行条例》{nr3}" in found[f"national.compensation.lost.uninsured@{version}"]
    assert {"name": "express_regulation", "version": version} in [{"name": p.name, "version": p.version}
                                                                  for p in v.packs]


def test_before_the_measures_of_2023_nothing_on_lockers(engine):
    before = case(product="standard", delivery={"signed_by": "locker", "recipient_consented": False},
                  scans=[{"type": "collect", "station": "S-01", "at": "2024-02-29T23:59:59+08:00"}])
    v = engine.adjudicate(before, lang="en")
    assert not [f for f in v.findings if f.clause == "NR-1"]
    assert any(n.startswith("express_market: no version in force") for n in v.not_covered)
    after = case(product="standard", delivery={"signed_by": "locker", "recipient_consented": False})
    [f] = [f for f in engine.adjudicate(after).findings if f.clause == "NR-1"]
    assert "《快递市场管理办法》第二十八条第三款" in f.message and f.station == "D-01" and f.fine_cny == "0.00"


def test_the_hand_written_adjudicator_agrees_with_the_shipped_packs_on_national_cases():
    """benchmarks/handwritten.py encodes NR-1…NR-4 again, by hand from NATIONAL.md: on generated
    cases given routes, promises, insurance, losses, lost/damaged/short outcomes and unsigned
    parcels, both find the same rules, levels, fines, refunds and compensation per payer."""
    import copy
    import random
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
    import generate
    import handwritten
    r = random.Random(3)
    cases = []
    for c in generate.cases(1500, seed=11):
        c = copy.deepcopy(c)
        if r.random() < 0.6:
            c.setdefault("service", {})["route"] = r.choice(["same_city", "intra_province", "inter_province"])
        if r.random() < 0.2:
            c.setdefault("service", {})["promised_by"] = f"2026-05-0{r.randint(1, 9)}T1{r.randint(0, 9)}:00:00+08:00"
        if c.get("parcel") and r.random() < 0.5:
            c["parcel"]["insured_value_cny"] = r.choice([0, 100, 320, 1000, "250.50"])
        out = c.setdefault("outcome", {})
        for name in ("lost", "damaged", "contents_short"):
            if r.random() < 0.3:
                out[name] = True
        if r.random() < 0.5:
            out["loss_cny"] = r.choice([0, 10, "33.33", 500, 2000])
        if r.random() < 0.3:
            c["scans"] = [s for s in c.get("scans", []) if s["type"] != "signed"]
        if c.get("delivery") and r.random() < 0.2:
            c["delivery"]["signed_by"] = "courier"
        cases.append(c)
    engine = Engine.default()
    same, compared = handwritten.agreement(cases, engine, "2026-05-20T00:00:00+08:00")
    assert compared > 1000 and same == compared
    owed_somewhere = sum(1 for c in cases[:300] if owed(engine, c, as_of="2026-05-20T00:00:00+08:00"))
    assert owed_somewhere > 30          # the comparison reaches compensations, not only empty maps
