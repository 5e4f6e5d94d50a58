"""The derivations a pack may call, each one record with both of its spellings side by side.

A derivation is computed per case (`per_case`, on Python values: datetimes, Decimals)
and over a chunk of cases (`columns`, a Polars expression over the encoded values
the columnar backend holds: µs since the epoch, fen, day numbers; see types.py).
Both are written here, next to each other, so a change to one is seen beside the
other; tests/test_derivations.py runs every record through every backend at its
boundaries. A derivation without a `columns` spelling sends every row of a pack
using it to the per-case path (the columnar backend refuses the pack).

`columns(c, **args)` gets a `types.Columns` (the Polars module, the zone's fixed UTC
offset) and each argument as an expression over encoded values; it returns an
expression, or for money (value, refused): where `refused` holds, the row goes to
the per-case path, whose money module refuses it with its own words.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from .. import money
from ..case import contract as C
from . import types as T
from .types import DAY_US, ORDINAL_1970, US, Columns


class Function(NamedTuple):
    """A derivation function: typed arguments in, one typed value out. None in -> None out."""

    name: str
    args: dict[str, T.FactType]        # in the order `compute` takes them, after the zone
    result: T.FactType
    compute: Callable[..., Any]        # per case: compute(zone, *args); FactPlan calls it by position
    doc: str
    columns: Callable[..., Any] | None = None     # over a chunk: columns(c, **args) -> expression (or money pair)


# ---- cutoff_deadline (TB-1) -------------------------------------------------------------------

def _cutoff_deadline(zone: ZoneInfo, at: datetime, cutoff: time, same_day_by: time, next_day_by: time) -> datetime:
    local = at.astimezone(zone)
    if local.time().replace(tzinfo=None) < cutoff:
        day, by = local.date(), same_day_by
    else:
        day, by = local.date() + timedelta(days=1), next_day_by
    return datetime.combine(day, by, tzinfo=zone)


def _cutoff_deadline_columns(c: Columns, at: Any, cutoff: Any, same_day_by: Any, next_day_by: Any) -> Any:
    """The same in µs, in a zone of one fixed offset (times of day are whole seconds: types.TIME_OF_DAY)."""
    pl, off = c.pl, c.off
    local = at + off
    day = local // DAY_US
    before = (local - day * DAY_US) < cutoff * US
    return pl.when(before).then(day * DAY_US + same_day_by * US).otherwise((day + 1) * DAY_US + next_day_by * US) - off


# ---- dates ----------------------------------------------------------------------------------

def _add_years(zone: ZoneInfo, on: date, years: int) -> date:
    try:
        return on.replace(year=on.year + years)
    except ValueError:  # 29 Feb -> 28 Feb
        return on.replace(year=on.year + years, day=28)


def _add_years_columns(c: Columns, on: Any, years: Any) -> Any:
    pl = c.pl
    d = (on - ORDINAL_1970).cast(pl.Date)
    y = d.dt.year().cast(pl.Int64) + years
    leap = ((y % 4 == 0) & (y % 100 != 0)) | (y % 400 == 0)
    day = pl.when((d.dt.month() == 2) & (d.dt.day() == 29) & ~leap).then(28).otherwise(d.dt.day())
    return pl.date(y, d.dt.month(), day).cast(pl.Int64) + ORDINAL_1970


# ---- durations --------------------------------------------------------------------------------

def _minutes_after(zone: ZoneInfo, at: datetime, since: datetime) -> int:
    seconds = (at - since).total_seconds()
    whole = int(seconds // 60)
    return whole + (1 if seconds > whole * 60 else 0)


def _route_time(zone: ZoneInfo, route: str, same_city: timedelta, intra_province: timedelta,
                inter_province: timedelta) -> timedelta | None:
    return {"same_city": same_city, "intra_province": intra_province, "inter_province": inter_province}.get(route)


def _route_time_columns(c: Columns, route: Any, same_city: Any, intra_province: Any, inter_province: Any) -> Any:
    pl = c.pl
    return (pl.when(route == "same_city").then(same_city).when(route == "intra_province").then(intra_province)
            .when(route == "inter_province").then(inter_province).otherwise(pl.lit(None, pl.Int64)))


# ---- money ------------------------------------------------------------------------------------
# Over columns: (value in fen, where the per-case path must judge the row): money.times and
# money.share refuse what these would have to wrap or leave undefined, and the refusal is theirs to word.
# In 128 bits: an amount (< 10^17 fen) times a factor (< 10^15) or another amount stays under 2^127.

def _insured_share(zone: ZoneInfo, loss: Decimal, insured: Decimal, declared: Decimal) -> Decimal:
    """NR-3: an insured parcel's loss paid in the insured share of the declared value, at most all of it."""
    if declared <= insured:           # fully insured (a declared value of 0 included)
        return loss
    return money.share(loss, insured, declared)


def _insured_share_columns(c: Columns, loss: Any, insured: Any, declared: Any) -> tuple[Any, Any]:
    """money.share in fen: loss × insured ÷ declared, halves away from zero; undefined for a declared 0."""
    pl = c.pl
    product = loss.cast(pl.Int128) * insured.cast(pl.Int128)
    magnitude = (2 * product.abs() + declared.abs()) // (2 * declared.abs())
    share = pl.when((product < 0) != (declared < 0)).then(magnitude * -1).otherwise(magnitude).cast(pl.Int64)
    full = declared <= insured
    return pl.when(full).then(loss).otherwise(share), ~full & (declared == 0)


def _times(zone: ZoneInfo, amount: Decimal, factor: int) -> Decimal:
    return money.times(amount, factor)


def _times_columns(c: Columns, amount: Any, factor: Any) -> tuple[Any, Any]:
    product = amount.cast(c.pl.Int128) * factor
    return product, product.abs() > money.AMOUNT.most


_ROUTE = T.enum_type(C.ROUTES)

FUNCTIONS: dict[str, Function] = {d.name: d for d in [
    Function("cutoff_deadline", {"at": T.INSTANT, "cutoff": T.TIME_OF_DAY, "same_day_by": T.TIME_OF_DAY,
                                   "next_day_by": T.TIME_OF_DAY}, T.INSTANT, _cutoff_deadline,
               "local time of `at` strictly before `cutoff` -> same day at `same_day_by`, else next day at `next_day_by`",
               _cutoff_deadline_columns),
    Function("add", {"at": T.INSTANT, "duration": T.DURATION}, T.INSTANT,
               lambda zone, at, duration: at + duration, "an instant plus a duration",
               lambda c, at, duration: at + duration),
    Function("local_date", {"at": T.INSTANT}, T.DATE,
               lambda zone, at: at.astimezone(zone).date(), "calendar date of an instant in local time",
               lambda c, at: (at + c.off) // DAY_US + ORDINAL_1970),
    Function("add_years", {"on": T.DATE, "years": T.INT}, T.DATE, _add_years,
               "same calendar date N years later (29 Feb -> 28 Feb)", _add_years_columns),
    Function("minutes_after", {"at": T.INSTANT, "since": T.INSTANT}, T.INT, _minutes_after,
               "whole minutes from `since` to `at`, rounded up",
               lambda c, at, since: -((since - at) // (60 * US))),
    Function("duration_after", {"at": T.INSTANT, "since": T.INSTANT}, T.DURATION,
               lambda zone, at, since: at - since, "the exact time from `since` to `at` (for messages: "
               "minutes_after rounds a second up to a minute)",
               lambda c, at, since: at - since),
    Function("times", {"amount": T.MONEY, "factor": T.INT}, T.MONEY, _times,
               "an amount of money times a whole number", _times_columns),
    Function("least", {"a": T.MONEY, "b": T.MONEY}, T.MONEY,
               lambda zone, a, b: min(a, b), "the smaller of two amounts of money",
               lambda c, a, b: c.pl.min_horizontal(a, b)),
    Function("insured_share", {"loss": T.MONEY, "insured": T.MONEY, "declared": T.MONEY}, T.MONEY,
               _insured_share, "loss × min(1, insured ÷ declared), to the fen, half up", _insured_share_columns),
    Function("route_time", {"route": _ROUTE, "same_city": T.DURATION, "intra_province": T.DURATION,
                              "inter_province": T.DURATION}, T.DURATION, _route_time,
               "the duration given for the route (service.route): same_city, intra_province or inter_province",
               _route_time_columns),
]}
