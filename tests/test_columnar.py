"""The columnar batch path gives byte-identical verdicts, errors and statements to the per-case path.

`batch.adjudicate_rows` with the durable backend never takes the columnar path,
so it is the reference here: every row, valid or not, plain or odd, must come
out the same either way.
"""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import BASE
from slarules.engine import _Built
from slarules.columnar import evaluator as columnar
from slarules.columnar import input as columnar_input
from slarules.batch.runner import adjudicate_rows
from strategies import cases, dated_cases
from test_fastcase import mutated

DIFF = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.data_too_large])
NOW = "2026-05-20T00:00:00+00:00"


def both(engine, lines: list[bytes], *, as_of=None, lang="zh", now=NOW):
    rows = list(enumerate(lines, start=1))
    args = dict(source="cases.jsonl", raw=True, as_of=as_of, now=now, lang=lang)
    bulk = adjudicate_rows(engine, rows, backend="polars", **args)
    reference = adjudicate_rows(engine, rows, backend="durable", **args)
    assert bulk.verdicts == reference.verdicts
    assert bulk.errors == reference.errors
    assert bulk.statement.to_dict() == reference.statement.to_dict()
    same_table(engine, rows, bulk, dict(args, backend="polars"))
    return bulk


def same_table(engine, rows, bulk, args) -> None:
    """A Parquet batch's verdict table straight from the columns (per-case rows among them) is the one
    batch_io.verdict_table reads from the same verdicts' JSON text: its reference."""
    from slarules.batch.io import verdict_table
    direct = adjudicate_rows(engine, rows, arrow=True, **args)
    assert direct.arrow == (bulk.columns is not None)
    assert direct.table().equals(verdict_table(bulk.jsonl()))
    assert direct.errors == bulk.errors and direct.statement.to_dict() == bulk.statement.to_dict()


def encode(case: dict, compact: bool = True) -> bytes:
    separators = (",", ":") if compact else (", ", ": ")
    return json.dumps(case, ensure_ascii=False, separators=separators).encode()


@DIFF
@given(st.lists(cases(), min_size=1, max_size=30), st.sampled_from(["zh", "en"]), st.booleans())
def test_generated_cases_agree_and_take_the_columnar_path(engine, chunk, lang, compact):
    lines = [encode(c, compact) for c in chunk]
    bulk = both(engine, lines, lang=lang)
    frame = columnar_input.read_lines(list(enumerate(lines, start=1)))
    assert frame["__row"].to_list() == list(range(1, len(lines) + 1))
    # the columnar pass itself ran and judged every row: any exception in it falls back to the
    # per-case path silently (a poison row must not kill the chunk), so only this shows it broke
    assert bulk.columns is not None and bulk.columns["__row"].to_list() == list(range(1, len(lines) + 1))


@DIFF
@given(st.lists(cases(), min_size=1, max_size=30), st.sampled_from(["zh", "en"]))
def test_a_layer_over_the_packs_agrees_and_takes_the_columnar_path(layered_engine, chunk, lang):
    bulk = both(layered_engine, [encode(c) for c in chunk], lang=lang)
    assert bulk.columns is not None and bulk.columns["__row"].to_list() == list(range(1, len(chunk) + 1))


@DIFF
@given(st.lists(st.one_of(cases(), mutated()), min_size=1, max_size=30))
def test_broken_and_odd_rows_agree(engine, chunk):
    both(engine, [encode(c) for c in chunk])


@DIFF
@given(st.lists(cases(), min_size=1, max_size=10),
       st.sampled_from(["UTC", "Asia/Tokyo", "America/Bogota", "Europe/Berlin", "America/New_York", "Mars/Olympus"]))
def test_time_zones_with_one_offset_or_several_agree(engine, chunk, zone):
    for c in chunk:
        c["timezone"] = zone
    both(engine, [encode(c) for c in chunk])


_ONE_ZONE_WITHOUT_A_FINDING = [      # found by Hypothesis: a Parquet chunk's parts, one with no finding at all
    ({"waybill": "H0", "as_of": "2026-05-03T00:00:00+08:00", "stations": {"sending": "S-1", "delivering": "D-1"},
      "scans": []}, "Asia/Shanghai"),
    ({"waybill": "H0", "as_of": "2026-05-03T00:00:00+08:00", "stations": {"sending": "S-1", "delivering": "D-1"},
      "scans": [], "parcel": {"length_cm": "200", "width_cm": "200", "height_cm": "200", "weight_kg": "50",
                              "declared_value_cny": "500.00", "packaging_compliant": None, "prohibited": None}},
     "Asia/Tokyo")]


@DIFF
@given(st.lists(st.tuples(cases(), st.sampled_from(["Asia/Shanghai", "Asia/Singapore", "Etc/GMT-8", "Asia/Tokyo",
                                                     "Europe/Berlin", None])), min_size=1, max_size=12))
@example(chunk=_ONE_ZONE_WITHOUT_A_FINDING)
def test_a_chunk_of_mixed_zones_agrees_zones_sharing_an_offset_included(engine, chunk):
    for c, zone in chunk:
        c.pop("timezone", None) if zone is None else c.update(timezone=zone)
    both(engine, [encode(c) for c, _ in chunk])


@DIFF
@given(st.lists(cases(), min_size=1, max_size=10), st.sampled_from([
    None, "2026-05-21T09:00:00+08:00", "2026-05-21T09:00:00", "2026-05-21T09:00:00.5+08:00", "1999-01-01T00:00:00Z"]))
def test_a_run_as_of_agrees_whatever_its_form(engine, chunk, as_of):
    for c in chunk:
        c.pop("as_of", None)
    both(engine, [encode(c) for c in chunk], as_of=as_of)


ODD_LINES = [
    b'{"waybill":"A1","waybill":"A2"}',                         # repeated key: json_data rejects it
    b'{"waybill":"A1","parcel":{"weight_kg":"1.5","weight_kg":null}}',
    b'{"waybill":"A1","hub_handling":null,"scans":[]}',          # explicit null and empty list
    b'{"waybill" :"A1"}',                                       # space before the colon
    b'{"waybill":"A\\u0031"}',                                  # an escape
    b'{"waybill":"A1","parcel":{"weight_kg":8.5,"length_cm":1E2,"width_cm":100.0,"height_cm":12}}',
    b'{"waybill":"A1","parcel":{"weight_kg":true}}',
    b'{"waybill":"A1","complaint":{"issues":"delay"}}',
    b'{"waybill":"A1","scans":[null]}',
    b'{"waybill":123}',
    b'[1, 2]',
    b'{"waybill":"A1","as_of":"2026-05-02T11:40:00"}',
    b'{"waybill":"A1","as_of":"2026-02-30T11:40:00+08:00"}',
    b'{"waybill":"A1","as_of":"2026-05-02T24:00:00+08:00"}',
    b'{"waybill":"A1","complaint":{"received_at":"2026-05-02T11:40:00Z","rings":"3"}}',
    b'\xef\xbb\xbf{"waybill":"A1"}',
    b'{"waybill":"A1","complaint":{"kind":"complaint","received_at":"2026-05-02T11:40:00+08:00"}}',  # no issues
]


@pytest.mark.parametrize("line", ODD_LINES)
def test_each_odd_line_agrees(engine, line):
    full = json.loads(encode(BASE))
    both(engine, [encode(full), line, encode(full)])


def test_a_whole_generated_file_agrees(engine, tmp_path):
    import sys
    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import write
    path = tmp_path / "c.jsonl"
    write(str(path), 3000, seed=5, bad_rate=0.03)
    done = both(engine, path.read_bytes().splitlines())
    assert len(done.verdicts) > 2800


def test_packs_it_cannot_compile_leave_every_row_to_the_per_case_path(engine):
    """A derivation record without a `columns` spelling: the columnar backend refuses the packs."""
    import dataclasses
    fresh = copy.copy(engine)
    fresh.program = copy.copy(engine.program)
    fresh.program.derivations = [
        dataclasses.replace(d, fn=d.fn._replace(columns=None)) if d.fn.name == "cutoff_deadline" else d
        for d in engine.program.derivations]
    assert any(d.fn.columns is None for d in fresh.program.derivations)
    fresh._built = _Built()         # nothing built yet: it compiles the columns anew
    assert fresh.columnar("zh") is None
    both(fresh, [encode(BASE)])


def test_exact_delays_agree(engine):
    """Delays of seconds and fractions of one, signed or still open at as_of, in both languages."""
    lines = [encode(case) for case in (
        {**BASE, "scans": BASE["scans"][:3] + [{**BASE["scans"][3], "at": at}]}
        for at in ("2026-05-02T17:00:01+08:00", "2026-05-02T17:20:05+08:00", "2026-05-02T17:00:00.25+08:00",
                   "2026-05-02T18:30:00+08:00"))]
    lines.append(encode({**BASE, "scans": BASE["scans"][:3], "as_of": "2026-05-02T17:00:59.5+08:00"}))
    for lang in ("zh", "en"):
        assert len(both(engine, lines, lang=lang).verdicts) == 5


def test_tied_deadlines_pick_the_same_clause(engine):
    """A level-3 complaint's close (RG-2 and RG-5 both at +24 h) open, met and breached."""
    complaint = {"kind": "complaint", "channel": "phone", "received_at": "2026-05-03T08:00:00+08:00",
                 "issues": ["insult"], "first_contact_at": "2026-05-03T08:03:00+08:00"}
    lines = [encode({**BASE, "as_of": as_of, "complaint": {**complaint, **closed}})
             for as_of in ("2026-05-03T10:00:00+08:00", "2026-05-04T10:00:00+08:00")
             for closed in ({}, {"closed_at": "2026-05-03T20:00:00+08:00"}, {"closed_at": "2026-05-04T09:00:00+08:00"})]
    for _, verdict in both(engine, lines).verdicts:
        close = next(d for d in json.loads(verdict)["deadlines"] if d["name"] == "close")
        assert close["clause"] == "RG-5"


def table_both(engine, table):
    from slarules.batch.io import TableRows
    args = dict(source="cases.parquet", raw=False, as_of=None, now=NOW, lang="zh")
    results = []
    for backend in ("polars", "durable"):
        results.append(adjudicate_rows(engine, TableRows(table.to_batches()[0], 1), backend=backend, **args))
    bulk, reference = results
    assert bulk.verdicts == reference.verdicts and bulk.errors == reference.errors
    assert bulk.statement.to_dict() == reference.statement.to_dict()
    same_table(engine, TableRows(table.to_batches()[0], 1), bulk, dict(args, backend="polars"))
    return bulk


def test_parquet_rows_agree(engine, tmp_path):
    import sys
    import pyarrow.parquet as pq
    from conftest import ROOT
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from generate import write
    path = tmp_path / "c.parquet"
    write(str(path), 1500, seed=9, bad_rate=0.05)
    table = pq.read_table(path).combine_chunks()
    assert len(table_both(engine, table).verdicts) > 1300


def test_parquet_odd_columns_agree(engine):
    import pyarrow as pa
    from slarules.batch.io import case_schema
    good = [json.loads(encode(BASE)) for _ in range(3)]
    for c in good:
        for k in ("parcel", "collection"):
            c[k] = {f: str(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                    for f, v in c[k].items()}
    table = pa.Table.from_pylist(good, schema=case_schema())
    odd = table.append_column("colour", pa.array([None, "red", None]))          # an unknown column, one value
    table_both(engine, odd)
    scans = table.column("scans").to_pylist()
    scans[1] = scans[1] + [None]                                                 # a null scan
    table_both(engine, table.set_column(table.schema.get_field_index("scans"), "scans",
                                        pa.array(scans, type=table.schema.field("scans").type)))
    ints = pa.Table.from_pylist([{"waybill": "W1", "rings": 3}], schema=pa.schema([("waybill", pa.string()),
                                                                                   ("rings", pa.int32())]))
    table_both(engine, ints)                                                     # types the columns do not take


@DIFF
@given(st.lists(dated_cases(), min_size=1, max_size=20), st.sampled_from(["zh", "en"]))
def test_dated_versions_are_chosen_per_row_as_per_case(dated_engine, chunk, lang):
    """The columnar path's per-row `packs` and guards give the per-case verdict at every boundary."""
    lines = [encode(c) for c in chunk]
    bulk = both(dated_engine, lines, lang=lang)
    # a row without scans is not covered by the dated pack: the columnar path judges it too
    assert bulk.columns is not None and bulk.columns["__row"].to_list() == list(range(1, len(chunk) + 1))
