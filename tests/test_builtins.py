"""Every built-in derived value (packs/builtins.py), per case and in columns, at its boundaries.

Each record holds a per-case spelling (over the case's sorted scans) and a columnar one (a
group-by over the exploded scan frame, then an expression over the row). Here both run on
cases at the boundaries — no scans, one scan, scans tied in time (also written in two
zones), a dispatch exactly at the signing or at as_of, absent blocks and fields, money and
sizes at the contract's bounds — each case also with its scans reversed (the columnar
aggregates must not read row order), and the encoded values must be equal. The cases are
also run through the batch both ways, verdict for verdict.

A built-in added without either spelling, or that these cases never see both present and
absent, fails `test_every_builtin_has_both_spellings_and_both_outcomes_here`.
"""
from __future__ import annotations

import json

import polars as pl
import pytest
from conftest import case

from slarules import money
from slarules.batch.runner import adjudicate_rows
from slarules.case.fast import case_of
from slarules.columnar import input as columnar_input
from slarules.facts import parse_case
from slarules.packs.builtins import BUILTINS, Derived, stages
from slarules.packs.vocabulary import BASE_FACTS
from slarules.runtime.values import key

FACTS = [b for b in BUILTINS.values() if b.type is not None]
CST = "+08:00"
MAX_FEN = money.from_fen(money.CASE_FIELD.most)      # a case's largest money field


def scan(kind: str, station: str, at: str) -> dict:
    return {"type": kind, "station": station, "at": at if at[-1] == "Z" or at[-6] in "+-" else at + CST}


def _no_delivering(c: dict) -> dict:
    c["stations"] = {"sending": "S-01"}
    return c


DAY = "2026-05-02T"
CASES: dict[str, dict] = {
    "base": case(),
    "no scans": case(scans=[]),
    "no scans, no delivering station": _no_delivering(case(scans=[])),
    "no stations block": case(stations=None),
    "one collect": case(scans=[scan("collect", "S-01", DAY + "09:00:00")]),
    "one signed": case(scans=[scan("signed", "D-01", DAY + "09:00:00")]),
    "one arrival elsewhere": _no_delivering(case(scans=[scan("arrival", "D-07", DAY + "09:00:00")])),
    "one dispatch": case(scans=[scan("dispatch", "S-01", DAY + "09:00:00")]),
    "one dispatch from the delivering station": case(scans=[scan("dispatch", "D-01", DAY + "09:00:00")]),
    "arrivals tied, no delivering station": _no_delivering(case(scans=[
        scan("arrival", "D-02", DAY + "11:00:00"), scan("arrival", "D-09", DAY + "11:00:00"),
        scan("arrival", "D-05", DAY + "11:00:00"), scan("arrival", "D-99", DAY + "10:59:59")])),
    "arrivals tied across zones": _no_delivering(case(scans=[
        scan("arrival", "D-09", DAY + "11:00:00"), scan("arrival", "D-02", "2026-05-02T03:00:00Z"),
        scan("dispatch", "S-01", "2026-05-02T03:00:00Z"), scan("dispatch", "S-02", DAY + "11:00:00")])),
    "two arrivals at the delivering station": case(scans=[
        scan("arrival", "D-01", DAY + "12:00:00"), scan("arrival", "D-01", DAY + "11:00:00"),
        scan("arrival", "D-02", DAY + "10:00:00")]),
    "signed and collect tied": case(scans=[
        scan("signed", "D-01", DAY + "09:00:00"), scan("collect", "S-01", DAY + "09:00:00"),
        scan("signed", "D-02", DAY + "09:00:00")]),
    "collect after an earlier scan": case(scans=[
        scan("dispatch", "S-01", DAY + "08:59:59"), scan("collect", "S-01", DAY + "09:00:00")]),
    "no collect: the earliest scan": case(scans=[
        scan("dispatch", "S-01", DAY + "09:00:01"), scan("arrival", "D-01", DAY + "09:00:00")]),
    "dispatch exactly at signing": case(scans=[
        scan("dispatch", "S-01", DAY + "08:00:00"), scan("dispatch", "S-02", DAY + "16:20:00"),
        scan("signed", "D-01", DAY + "16:20:00")]),
    "dispatch a second after signing": case(scans=[
        scan("dispatch", "S-01", DAY + "08:00:00"), scan("dispatch", "S-02", DAY + "16:20:01"),
        scan("signed", "D-01", DAY + "16:20:00")]),
    "dispatch exactly at as_of": case(as_of="2026-05-10T09:00:00+08:00", scans=[
        scan("dispatch", "S-01", "2026-05-10T09:00:00")]),
    "dispatch a second after as_of": case(as_of="2026-05-10T09:00:00+08:00", scans=[
        scan("dispatch", "S-01", "2026-05-10T09:00:01")]),
    "dispatches tied at different stations": case(scans=[
        scan("dispatch", "S-03", DAY + "08:00:00"), scan("dispatch", "S-01", DAY + "08:00:00")]),
    "no parcel, no collection": case(parcel=None, collection=None),
    "a side absent": case(parcel={"height_cm": None}),
    "sides at the bounds": case(parcel={"length_cm": 10000, "width_cm": "10000.00", "height_cm": 10000}),
    "sides at the least": case(parcel={"length_cm": "0.01", "width_cm": "0.01", "height_cm": "0.01"}),
    "sides tied, fractional": case(parcel={"length_cm": "30.5", "width_cm": "30.50", "height_cm": "7.25"}),
    "charged absent": case(collection={"charged_cny": None}),
    "quoted absent": case(collection={"quoted_cny": None}),
    "overcharge at the bound": case(collection={"charged_cny": str(MAX_FEN), "quoted_cny": "0"}),
    "undercharge at the bound": case(collection={"charged_cny": "0.00", "quoted_cny": str(MAX_FEN)}),
    "charged as quoted": case(collection={"charged_cny": "0.01", "quoted_cny": "0.01"}),
}


def _clean(c: dict) -> dict:
    """Fields set to None in CASES are absent, not null."""
    return {k: _clean(v) if isinstance(v, dict) else v for k, v in c.items() if v is not None}


def _reversed(c: dict) -> dict:
    return {**c, "scans": list(reversed(c["scans"]))}


DOCS = [_clean(c) for c in CASES.values()] + [_reversed(_clean(c)) for c in CASES.values()]
NAMES = list(CASES) + [f"{n}, scans reversed" for n in CASES]


def per_case(doc: dict, model) -> dict[str, object]:
    """Each built-in's encoded value for one case, by its per-case spelling."""
    c = model(doc)
    d = Derived(c, c.as_of)
    values = {b.name: b.per_case(d) for b in FACTS}
    return {n: None if v is None else BUILTINS[n].type.encode(v) for n, v in values.items()}


@pytest.fixture(scope="module")
def in_columns() -> list[dict[str, object]]:
    """Each built-in's encoded value for every case, by its columnar spelling (as the columnar backend reads)."""
    lines = [json.dumps(d, separators=(",", ":")).encode() for d in DOCS]
    raw = columnar_input.read_lines(list(enumerate(lines, start=1)))
    assert raw.height == len(DOCS)
    f = columnar_input.builtins(columnar_input.checks_and_facts(raw, None, 0), columnar_input.scan_frame(raw))
    f = f.sort("__row")
    assert f["__ok"].all(), f.filter(~pl.col("__ok"))["__row"].to_list()       # every case takes the columns
    return f.select(*(pl.col(key(b.name)).alias(b.name) for b in FACTS)).to_dicts()


@pytest.mark.parametrize("model", [parse_case, case_of], ids=["pydantic", "msgspec"])
def test_each_builtin_is_the_same_per_case_and_in_columns(in_columns, model):
    for name, doc, columns in zip(NAMES, DOCS, in_columns):
        assert columns == per_case(doc, model), name


def test_the_boundary_cases_give_the_same_verdicts_on_every_backend(engine):
    rows = [(n, json.dumps(d).encode()) for n, d in enumerate(DOCS, start=1)]
    args = {"source": "cases.jsonl", "raw": True, "as_of": None, "now": "2026-05-20T00:00:00+00:00", "lang": "zh"}
    bulk = adjudicate_rows(engine, rows, backend="polars", **args)
    reference = adjudicate_rows(engine, rows, backend="durable", **args)
    assert bulk.columns is not None and bulk.columns.height == len(DOCS)     # the columns judged every row
    assert bulk.verdicts == reference.verdicts and bulk.errors == reference.errors == []


def test_every_builtin_has_both_spellings_and_both_outcomes_here(in_columns):
    """A record lacking a spelling, or never present (or never absent) in these cases, fails here."""
    for b in BUILTINS.values():
        assert b.per_case is not None and b.columns is not None, f"built-in {b.name} lacks a spelling"
        assert BASE_FACTS.get(b.name, None) is None or BASE_FACTS[b.name].type is b.type
    for b in FACTS:
        seen = {row[b.name] is None for row in in_columns}
        assert seen == {True, False}, f"built-in {b.name} is never {'absent' if False in seen else 'present'} here"
    # every built-in fact a rule may read is a record (none has a body elsewhere)
    derived = {p for p, spec in BASE_FACTS.items() if getattr(spec.get, "per_case", None) is not None}
    assert derived == {b.name for b in FACTS}


def test_the_stages_refuse_a_builtin_reading_what_nothing_computes():
    b = BUILTINS["reference_arrival"]
    with pytest.raises(ValueError, match="reference_arrival"):
        stages([b], set())
    assert [[r.name for r in s] for s in stages(list(BUILTINS.values()), set(BASE_FACTS))][-1] == [
        "reference_arrival", "reference_arrival_source"]
