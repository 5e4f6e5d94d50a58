"""Money at its bounds: a pack whose amounts reach each bound of slarules/money.py from a case's
charged and quoted amounts, and what every verdict and statement must then say, worked out here
in plain integers of fen (tests/test_money.py, tests/test_spark.py).

From a case's `charged_cny` c and `quoted_cny` q (fen):
- scaled = c × FACTOR and scaled_back = (c − q) × FACTOR, each refused past money.AMOUNT;
- FINES rules fine the sending station `scaled` and refund `scaled_back`: the station's fines stay
  at most FINES × AMOUNT ≤ money.VERDICT, but sum past 2^63 over a few verdicts of a statement;
- one more rule refunds `scaled_back` at the delivering station: RULES refunds, past VERDICT either way;
- RULES compensation rules owe `scaled` (to the network): past VERDICT before scaled passes AMOUNT;
- one rule fines the delivering station an amount of exactly AMOUNT when scaled ≥ 900,000,000,000,000.00.
"""
from __future__ import annotations

import json

import yaml
from hypothesis import strategies as st

from slarules.money import AMOUNT, CASE_FIELD, VERDICT

FACTOR = 1001
RULES = VERDICT.most // AMOUNT.most + 1          # 11 amounts at the bound of one pass a verdict's
FINES = RULES - 1
AT_AMOUNT_FROM = 90_000_000_000_000_000         # fen of `scaled` from which the delivering station is fined AMOUNT
SENDING, DELIVERING, NETWORK = "S-01", "D-01", "network"


def yuan(fen: int) -> str:
    sign, fen = ("-", -fen) if fen < 0 else ("", fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def pack_text() -> str:
    def both():         # each rule its own objects: shared ones would be dumped as YAML aliases, refused
        return {"zh": "罚 {fine_cny} 元，退 {refund_cny} 元，赔 {compensation_cny} 元。",
                "en": "Fined {fine_cny}, refunds {refund_cny}, owes {compensation_cny}."}

    def scope():
        return [{"fact": "collection", "exists": True}]
    rules = [{"id": f"bounds.fine.{i}", "clause": "TB-5", "scope": scope(),
              "then": {"kind": "fine", "party": "sending_station", "fine_cny": {"fact": "scaled"},
                       "refund_cny": {"fact": "scaled_back"}}, "message": both()} for i in range(FINES)]
    rules.append({"id": "bounds.refund", "clause": "TB-5", "scope": scope(),
                  "then": {"kind": "refund", "party": "delivering_station", "refund_cny": {"fact": "scaled_back"}},
                  "message": both()})
    rules += [{"id": f"bounds.owed.{i}", "clause": "NR-3", "scope": scope(),
               "then": {"kind": "compensation", "compensation_cny": {"fact": "scaled"}, "payer": "loss"},
               "message": both()} for i in range(RULES)]
    rules.append({"id": "bounds.at-amount", "clause": "TB-5", "scope": scope(),
                  "when": [{"fact": "scaled", "ge": yuan(AT_AMOUNT_FROM)}],
                  "then": {"kind": "fine", "party": "delivering_station", "fine_cny": {"param": "at_amount"}},
                  "facts": ["scaled"], "message": both()})
    pack = {"pack": "bounds", "version": "1", "timezone": "Asia/Shanghai",
            "description": "money at its bounds (tests/money_bounds.py)",
            "parameters": {"at_amount": {"type": "money", "value": yuan(AMOUNT.most)}},
            "derive": {name: {"fn": "times", "args": {"amount": {"fact": fact}, "factor": FACTOR}}
                       for name, fact in (("scaled", "collection.charged_cny"), ("scaled_back", "overcharge_cny"))},
            "rules": rules}
    return yaml.safe_dump(pack, allow_unicode=True, sort_keys=False)


def case_line(waybill: str, charged: int, quoted: int) -> bytes:
    from conftest import case
    c = case(waybill=waybill, collection={"charged_cny": yuan(charged), "quoted_cny": yuan(quoted)})
    return json.dumps(c, ensure_ascii=False).encode()


def expected(charged: int, quoted: int) -> tuple[str, dict]:
    """("error", {"field": ...}) or ("verdict", the money fields in fen), as slarules must give them."""
    for name, value in (("quoted_cny", quoted), ("charged_cny", charged)):
        if not 0 <= value <= CASE_FIELD.most:
            return "error", {"field": f"collection.{name}"}
    scaled, back = charged * FACTOR, (charged - quoted) * FACTOR
    for name, value in (("scaled", scaled), ("scaled_back", back)):
        if abs(value) > AMOUNT.most:
            return "error", {"field": name}
    fines = {SENDING: FINES * scaled} if scaled > 0 else {}
    if scaled >= AT_AMOUNT_FROM:
        fines[DELIVERING] = AMOUNT.most
    owed = {NETWORK: RULES * scaled} if scaled > 0 else {}
    refunds = RULES * back
    for name, value in (("fines_cny", max(fines.values(), default=0)), ("compensation_cny", owed.get(NETWORK, 0)),
                        ("refunds_cny", refunds)):
        if abs(value) > VERDICT.most:
            return "error", {"field": name}
    return "verdict", {"fines_cny": dict(sorted(fines.items())), "refunds_cny": refunds, "compensation_cny": owed,
                       # the statement: per station, fines and refunds
                       "stations": {SENDING: (fines.get(SENDING, 0), FINES * back),
                                    DELIVERING: (fines.get(DELIVERING, 0), back)}}


def expected_statement(rows: list[tuple[int, int]]) -> dict[str, tuple[int, int]]:
    """Per station, the fines and refunds (fen) of the rows that give a verdict."""
    out: dict[str, list[int]] = {}
    for charged, quoted in rows:
        kind, money = expected(charged, quoted)
        if kind == "verdict":
            for station, (fine, refund) in money["stations"].items():
                entry = out.setdefault(station, [0, 0])
                entry[0] += fine
                entry[1] += refund
    return {k: (v[0], v[1]) for k, v in out.items()}


# each bound, in fen of charged_cny (or of charged − quoted), with a fen either side
EDGES = [VERDICT.most // (RULES * FACTOR), AMOUNT.most // FACTOR, CASE_FIELD.most, -(-AT_AMOUNT_FROM // FACTOR)]
NEAR = st.sampled_from(EDGES).flatmap(lambda edge: st.integers(edge - 1, edge + 1))
FEN = st.one_of(NEAR, st.integers(0, CASE_FIELD.most), st.integers(0, 2000))


@st.composite
def charged_and_quoted(draw) -> tuple[int, int]:
    charged = draw(FEN)
    if draw(st.booleans()):
        quoted = draw(FEN)
    else:                       # the difference at a bound: refunds either way
        quoted = charged - draw(st.sampled_from([1, -1])) * draw(NEAR)
    return charged, quoted


def check(verdicts: dict[int, str], errors: dict[int, str], statement, pairs: list[tuple[int, int]]) -> None:
    """Each row's verdict or refusal (JSON text by row number, from 1) and the statement's money, as
    `expected` works them out for `pairs` (charged, quoted) in row order."""
    for n, (charged, quoted) in enumerate(pairs, start=1):
        kind, want = expected(charged, quoted)
        if kind == "error":
            assert n in errors and json.loads(errors[n])["field"] == want["field"], (n, charged, quoted, errors.get(n))
            continue
        v = json.loads(verdicts[n])
        assert v["fines_cny"] == {k: yuan(a) for k, a in want["fines_cny"].items()}
        assert v["compensation_cny"] == {k: yuan(a) for k, a in want["compensation_cny"].items()}
        assert v["refunds_cny"] == yuan(want["refunds_cny"])
    stations = statement.to_dict()["stations"]
    for station, (fines, refunds) in expected_statement(pairs).items():
        assert (stations[station]["fines"], stations[station]["refunds"]) == (yuan(fines), yuan(refunds))
