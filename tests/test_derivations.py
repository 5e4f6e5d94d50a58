"""Every derivation function (packs/derivations.py) and every fact type (packs/types.py), through every
backend, at its boundaries.

Each record holds a per-case spelling (Python values) and a columnar one (Polars expressions over the
encoded values). Here each is run on boundary values — times exactly at a cut-off and half a second
past it, local midnight, 29 February, a minute and a microsecond either side, money at its bound and
past it, a declared value of 0 — and both spellings must agree exactly (a refused money value: refused
by both). The Spark backend runs the columnar spelling inside its executors; one Spark session runs the
whole table there too (tests/test_spark.py, in its one session). Zones with more than one UTC offset (DST) never take the columnar way
(`columnar.fixed_offset`), so they are run per case only, and that refusal is checked.

A new derivation or type is covered by adding its boundary values to EXAMPLES / VALUES: a record with
none, or without both spellings, fails `test_every_record_has_both_spellings_and_boundary_examples`.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal

import polars as pl
import pytest

from slarules import money
from slarules.columnar.evaluator import fixed_offset
from slarules.case import contract as C, zones
from slarules.packs import types as T
from slarules.packs.derivations import FUNCTIONS
from slarules.verdict import columns as V

FIXED_ZONES = ["Asia/Shanghai", "UTC", "Asia/Kolkata", "America/Bogota"]   # +08:00, 0, +05:30, -05:00
DST_ZONES = ["Europe/London", "America/New_York"]
CST = timezone(timedelta(hours=8))
NOON = datetime(2026, 5, 2, 12, 0, tzinfo=CST)
US = timedelta(microseconds=1)
BIG = money.from_fen(money.AMOUNT.most)          # the largest amount of money, in yuan

# name -> argument tuples (in the record's argument order), per-case Python values
EXAMPLES: dict[str, list[tuple]] = {
    "cutoff_deadline": [(at, time(12), time(18), time(12)) for at in (
        NOON, NOON - US, NOON + timedelta(seconds=0.5), NOON + timedelta(seconds=1), NOON - timedelta(seconds=1),
        datetime(2026, 5, 2, 0, 0, tzinfo=CST), datetime(2026, 5, 1, 23, 59, 59, 999999, tzinfo=CST),
        datetime(2026, 5, 2, 4, 0, tzinfo=timezone.utc), datetime(2024, 2, 29, 13, 0, tzinfo=CST),
        datetime(2026, 12, 31, 23, 59, 59, tzinfo=CST))] + [
        (NOON, time(0), time(9), time(9, 30)), (NOON, time(23, 59, 59), time(23, 59, 59), time(0))],
    "add": [(NOON, d) for d in (timedelta(0), timedelta(seconds=1), timedelta(days=1), timedelta(days=-1),
                                timedelta(seconds=T.DURATION_MAX_SECONDS))],
    "local_date": [(at,) for at in (NOON, datetime(2026, 5, 1, 16, 0, tzinfo=timezone.utc),
                                    datetime(2026, 5, 1, 15, 59, 59, 999999, tzinfo=timezone.utc),
                                    datetime(2026, 5, 2, 4, 59, 59, tzinfo=timezone.utc),
                                    datetime(2024, 2, 29, 0, 0, tzinfo=CST), datetime(2000, 1, 1, tzinfo=CST))],
    "add_years": [(d, n) for d in (date(2024, 2, 29), date(2024, 2, 28), date(2023, 12, 31), date(2000, 2, 29),
                                   date(2096, 2, 29)) for n in (0, 1, 4, 100, -1)],
    "minutes_after": [(NOON + d, NOON) for d in (timedelta(0), US, timedelta(seconds=59, microseconds=999999),
                                                  timedelta(seconds=60), timedelta(seconds=60) + US, -US,
                                                  timedelta(seconds=-60), timedelta(seconds=-61), timedelta(days=400))],
    "duration_after": [(NOON + d, NOON) for d in (timedelta(0), US, timedelta(seconds=0.5), -US,
                                                   timedelta(days=-3, seconds=7))],
    "times": [(Decimal(a), f) for a, f in (("0.00", 5), ("12.50", 3), ("-0.01", 0), ("0.01", -1))] + [
        (BIG, 1), (BIG, -1), (BIG, 2), (Decimal("0.01"), 10**15 - 1), (-BIG, 1)],
    "least": [(Decimal(a), Decimal(b)) for a, b in (("1.00", "1.00"), ("0.00", "-0.01"), ("5", "4.99"))] + [(BIG, -BIG)],
    "insured_share": [tuple(map(Decimal, t)) for t in (
        ("100.00", "0.00", "0.00"), ("100.00", "50.00", "0.00"), ("100.00", "200.00", "100.00"),
        ("100.00", "100.00", "100.00"), ("0.01", "1.00", "2.00"), ("0.03", "1.00", "2.00"), ("-0.01", "1.00", "2.00"),
        ("100.00", "1.00", "3.00"), ("100.00", "0.00", "300.00"))] + [(BIG, BIG, BIG), (BIG, BIG - 1, BIG)],
    "route_time": [(r, timedelta(hours=24), timedelta(hours=48), timedelta(hours=72)) for r in C.ROUTES],
}


def per_case(fn, zone, args: tuple):
    """The per-case value, or "refused" when the money module refuses it."""
    try:
        return fn.compute(zone, *args)
    except (ValueError, OverflowError):
        return "refused"


def columnar_frame(fn, examples: list[tuple]) -> pl.DataFrame:
    """The arguments as the columnar backend holds them: one column of encoded values per argument."""
    cols = {}
    for i, (arg, ftype) in enumerate(fn.args.items()):
        values = [ftype.encode(ex[i]) for ex in examples]
        cols[arg] = pl.Series(arg, values, dtype=pl.String if ftype.name == "enum" else pl.Int64)
    return pl.DataFrame(cols)


def columnar_values(fn, frame: pl.DataFrame, off: int) -> list:
    """The record's columnar spelling over `frame`: encoded values, "refused" where it sends a row per case."""
    out = fn.columns(T.Columns(pl, V.decimal_text, off), **{a: pl.col(a) for a in fn.args})
    refused = pl.lit(False)
    if isinstance(out, tuple):
        out, refused = out
    got = frame.select(pl.when(refused.fill_null(False)).then(None).otherwise(out.cast(pl.Int64)).alias("v"),
                       refused.fill_null(False).alias("r"))
    return ["refused" if r else v for v, r in zip(got["v"], got["r"])]


def expected(fn, zone, examples: list[tuple]) -> list:
    return [v if v == "refused" or v is None else fn.result.encode(v) for v in (per_case(fn, zone, ex)
                                                                                 for ex in examples)]


@pytest.mark.parametrize("zone_name", FIXED_ZONES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_each_derivation_gives_the_same_value_per_case_and_in_columns(name, zone_name):
    fn, zone = FUNCTIONS[name], zones.zone(zone_name)
    off = fixed_offset(zone_name)
    assert off is not None
    examples = EXAMPLES[name]
    assert columnar_values(fn, columnar_frame(fn, examples), off) == expected(fn, zone, examples), name


@pytest.mark.parametrize("zone_name", DST_ZONES)
def test_a_zone_with_daylight_saving_never_takes_the_columnar_way(zone_name):
    """fixed_offset is None: such rows are judged per case, so the per-case spellings alone apply."""
    assert fixed_offset(zone_name) is None
    zone = zones.zone(zone_name)
    for name, examples in EXAMPLES.items():
        for ex in examples:
            per_case(FUNCTIONS[name], zone, ex)        # no exception but the money module's refusal


# ---- fact types ---------------------------------------------------------------------------------

ENUM = T.enum_type(C.ROUTES)
VALUES: dict[str, list] = {
    "bool": [True, False],
    "text": ["S-01", "D.01_x", "站点"],
    "int": [0, 1, 10**15 - 1, -3],
    "money": [Decimal("0.00"), Decimal("0.01"), Decimal("-0.01"), Decimal("12.50"), BIG, -BIG],
    "length": [Decimal("0.01"), Decimal("63"), Decimal("10000.00"), Decimal("30.5")],
    "volume": [Decimal("250047"), Decimal("0.000001"), Decimal("1.5")],
    "weight": [Decimal("0.001"), Decimal("50.010"), Decimal("100000")],
    # whole seconds: the columnar backend holds no other instant (instants.FAST_FORM; durations, times of
    # day and as_of are whole seconds too), so its isoformat writes none
    "instant": [NOON, NOON + timedelta(seconds=1), NOON - timedelta(seconds=1),
                datetime(2026, 5, 2, 0, 0, tzinfo=CST), datetime(2000, 1, 1, tzinfo=timezone.utc),
                datetime(2089, 12, 31, 23, 59, 59, tzinfo=timezone.utc)],
    "date": [date(2024, 2, 29), date(2000, 1, 1), date(2099, 12, 31)],
    "duration": [timedelta(0), US, timedelta(seconds=0.25), timedelta(seconds=1), timedelta(minutes=20, seconds=5),
                 timedelta(minutes=90), timedelta(days=1, microseconds=1), -timedelta(seconds=1),
                 -timedelta(seconds=61.5)],
    "time": [time(0), time(12), time(12, 0, 1), time(23, 59, 59)],
    "enum": list(C.ROUTES),
    "list": [[], ["delay"], ["delay", "lost", "overcharge"]],
}
SHOWN = [*T.TYPES.values(), ENUM, T.LIST]       # BLOCK: tested with `exists` only, never a value


def type_frame(ftype, values: list) -> pl.DataFrame:
    encoded = [ftype.encode(v) for v in values]
    dtype = {"bool": pl.Boolean, "text": pl.String, "enum": pl.String, "list": pl.List(pl.String)}.get(ftype.name, pl.Int64)
    return pl.DataFrame({"v": pl.Series("v", encoded, dtype=dtype)})


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("zone_name", FIXED_ZONES[:3])
@pytest.mark.parametrize("ftype", SHOWN, ids=lambda t: t.name)
def test_each_type_is_shown_and_written_alike_per_case_and_in_columns(ftype, zone_name, lang):
    zone, off = zones.zone(zone_name), fixed_offset(zone_name)
    values = VALUES[ftype.name]
    frame = type_frame(ftype, values)
    c = T.Columns(pl, V.decimal_text, off, lang)
    for fmt in ((None, "time", "date") if ftype.name == "instant" else (None,)):
        shown = frame.select(ftype.show_column(c, pl.col("v"), fmt))[:, 0].to_list()
        assert shown == [T.render_message(v, ftype, zone, fmt, lang) for v in values], (ftype.name, fmt)
    written = frame.select(ftype.json_column(c, pl.col("v")))[:, 0].to_list()
    assert written == [json.dumps(T.to_json_value(v, ftype, zone), ensure_ascii=False) for v in values], ftype.name
    decoded = [ftype.decode(e) for e in (ftype.encode(v) for v in values)]
    if ftype.name != "list":
        assert [ftype.encode(d) for d in decoded] == [ftype.encode(v) for v in values]


def test_every_record_has_both_spellings_and_boundary_examples():
    """A derivation or type added without its columnar spelling, or without boundary values here, fails."""
    for name, fn in FUNCTIONS.items():
        assert fn.compute is not None and fn.columns is not None, f"derivation {name} lacks a spelling"
        assert EXAMPLES.get(name), f"derivation {name} has no boundary examples in this test"
    for ftype in SHOWN:
        assert ftype.show is not None and ftype.to_json is not None, ftype.name
        assert ftype.show_column is not None and ftype.json_column is not None, f"type {ftype.name} lacks a spelling"
        assert VALUES.get(ftype.name), f"type {ftype.name} has no boundary values in this test"
    assert set(VALUES) == {t.name for t in SHOWN} and set(EXAMPLES) == set(FUNCTIONS)
