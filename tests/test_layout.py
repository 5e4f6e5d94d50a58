"""The verdict layout's two writers agree: verdict/columns.py (Polars) gives json.dumps's bytes.

The columnar path writes verdicts only through `columns.part` and books money
only through `columns.money_maps`; here both meet the per-case definitions
(`to_dict`/json.dumps, `layout.money_fields`) on arbitrary values, not just
the ones the shipped packs happen to produce.
"""
from __future__ import annotations

import json
from decimal import Decimal

from hypothesis import example, given, settings
from hypothesis import strategies as st

from slarules.errors import CaseError
from slarules.money import AMOUNT, VERDICT as VERDICT_BOUND
from slarules.runtime._polars import pl
from slarules.verdict import columns
from slarules.verdict.layout import (AMOUNTS, FINDING, PER_PAYER, TOTAL, Finding, Verdict, VERDICT, layout,
                                     money, money_fields)

SAFE = st.text(st.characters(codec="utf-8", exclude_characters='"\\', min_codepoint=0x20), max_size=12)
FEN = st.integers(-10**9, 10**9)
QUICK = settings(max_examples=40, deadline=None)


def test_the_dataclasses_are_the_layout():
    assert [f.name for f in VERDICT] == list(Verdict.__dataclass_fields__)
    assert [f.name for f in FINDING] == list(Finding.__dataclass_fields__)
    assert all(f.part is not None for f in VERDICT if f.kind == "parts")
    assert {v for v in AMOUNTS.values()} <= {f.name for f in FINDING}
    assert set(PER_PAYER.values()) | set(TOTAL.values()) <= set(AMOUNTS)
    assert set(PER_PAYER) | set(TOTAL) <= {f.name for f in VERDICT}
    assert layout(Verdict) == VERDICT


@QUICK
@given(st.fixed_dictionaries({
    "clause": SAFE, "rule": SAFE, "kind": SAFE, "party": SAFE, "severity": SAFE, "message": SAFE,
    "station": st.none() | SAFE, "fine_cny": FEN, "refund_cny": FEN, "compensation_cny": FEN,
    "facts": st.dictionaries(SAFE, st.none() | st.integers() | SAFE, max_size=3)}),
    st.sets(st.sampled_from([f.name for f in FINDING])))
def test_a_finding_written_by_columns_is_json_dumps(values, as_columns):
    """Each field either as a column or as a constant: the same bytes as the dataclass's to_dict."""
    finding = Finding(**{**values, **{a: money(Decimal(values[a]).scaleb(-2)) for a in AMOUNTS.values()}})
    frame = {}
    given_values = {}
    for f in FINDING:
        value = getattr(finding, f.name)
        if f.name not in as_columns:
            given_values[f.name] = value
            continue
        if f.kind == "money":
            frame[f.name] = pl.Series([values[f.name]], dtype=pl.Int64)
        elif f.kind == "object":
            text = ", ".join(f"{json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}"
                             for k, v in value.items())
            frame[f.name] = pl.Series([text], dtype=pl.String)
        else:
            frame[f.name] = pl.Series([value], dtype=pl.String)
        given_values[f.name] = pl.col(f.name)
    out = pl.DataFrame(frame or {"x": [0]}).select(columns.finding(given_values).alias("json"))["json"][0]
    assert out == json.dumps(finding.to_dict(), ensure_ascii=False)


# one amount anywhere within money.AMOUNT, often at it: 10 of them pass money.VERDICT
AMOUNT_FEN = st.integers(-500, 10**7) | st.sampled_from([AMOUNT.most, AMOUNT.most - 1, AMOUNT.most // 10 + 1])


@QUICK
@given(st.lists(st.tuples(st.integers(1, 4), st.sampled_from(["A站", "B", "hub", "客服"]),
                          st.fixed_dictionaries({a: AMOUNT_FEN for a in AMOUNTS})), max_size=25))
@example([(1, "B", {"fine": AMOUNT.most, "refund": 0, "compensation": 1})] * 11      # fines past the bound
         + [(2, "B", {"fine": AMOUNT.most, "refund": 0, "compensation": 0})] * 10)   # at it, exactly
@example([(1, "B", {"fine": 1, "refund": AMOUNT.most, "compensation": 1})] * 11)      # only the refunds past it
def test_money_maps_book_money_as_money_fields(bookings):
    """Per row, columns.money_maps gives the PER_PAYER maps layout.money_fields gives (as JSON items),
    exactly in 128 bits, and names as over the bound the rows money_fields refuses."""
    payers = pl.DataFrame({"__row": [r for r, _, _ in bookings], "who": [w for _, w, _ in bookings],
                           **{a: [amounts[a] for _, _, amounts in bookings] for a in AMOUNTS}},
                          schema={"__row": pl.Int64, "who": pl.String, **{a: pl.Int128 for a in AMOUNTS}})
    maps, over = columns.money_maps(payers, VERDICT_BOUND.most)
    got = {row["__row"]: row for row in maps.iter_rows(named=True)}
    for r in sorted({r for r, _, _ in bookings}):                  # (a row with no amount > 0: no entry)
        booked = [(w, {a: Decimal(v).scaleb(-2) for a, v in amounts.items()})
                  for row, w, amounts in bookings if row == r]
        try:
            expected = money_fields(booked)
        except CaseError as exc:      # past the bound: per payer (the columnar path's), or the refunds total
            assert (r in over.to_list()) == (exc.field in PER_PAYER)
            continue
        assert r not in over.to_list()
        for name in PER_PAYER:
            text = got.get(r, {}).get(f"__{name}")
            assert json.loads("{" + (text or "") + "}") == expected[name]
            assert "{" + (text or "") + "}" == json.dumps(expected[name], ensure_ascii=False)


def test_choices_of_one_column_are_picked_together():
    """Consecutive Choice fields by the same column are one pick of their joint text; null where none matches."""
    frame = pl.DataFrame({"which": [0, 1, None, 7], "due": ['"d0"', '"d1"', '"d2"', '"d3"']})
    which = pl.col("which")
    expr = columns.deadline({"name": "delivery", "clause": columns.Choice(which, {0: "TB-1", 1: "OV-1"}),
                             "rule": columns.Choice(which, {0: "tb.late", 1: "ov.big"}),
                             "due": pl.col("due"), "actual": pl.lit("null"), "status": "open"})
    assert str(expr).count("when") == 2           # one pick of two options, not one per field
    got = frame.select(expr.alias("json"))["json"].to_list()
    assert got[0] == '{"name": "delivery", "clause": "TB-1", "rule": "tb.late", "due": "d0", "actual": null, "status": "open"}'
    assert json.loads(got[1])["rule"] == "ov.big" and json.loads(got[1])["clause"] == "OV-1"
    assert got[2] is None and got[3] is None


PACK_VALUES = st.text(max_size=6) | st.integers(0, 3) | st.booleans() | st.lists(st.text(max_size=2), max_size=2)


@QUICK
@given(st.lists(st.tuples(PACK_VALUES, PACK_VALUES, PACK_VALUES), max_size=4), st.integers(1, 3))
def test_a_verdicts_packs_written_from_remembered_texts_are_json_dumps(packs, times):
    """A pack's text is remembered by its field values: 1, True and "1" (or a list) must not share one."""
    from slarules.verdict.layout import PackRef
    for _ in range(times):
        v = Verdict(waybill="w", as_of="t", packs=[PackRef(*p) for p in packs], findings=[], classifications=[],
                    complaint_level=None, fines_cny={}, refunds_cny="0.00", compensation_cny={}, missing=[],
                    not_covered=[], deadlines=[])
        assert v.to_json() == json.dumps(v.to_dict(), ensure_ascii=False, indent=2)


def test_packs_equal_but_not_alike_do_not_share_a_remembered_text():
    from slarules.verdict.layout import PackRef
    for first in (1, True, "1", 1.0, ["1"], False, 0):
        v = Verdict(waybill="w", as_of="t", packs=[PackRef(first, "v", "d")], findings=[], classifications=[],
                    complaint_level=None, fines_cny={}, refunds_cny="0.00", compensation_cny={}, missing=[],
                    not_covered=[], deadlines=[])
        assert v.to_json() == json.dumps(v.to_dict(), ensure_ascii=False, indent=2)
