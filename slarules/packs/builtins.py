"""The derived values every pack may read, each one record with both of its spellings side by side.

A built-in (`signed_at`, `reference_arrival`, the side lengths, ...) is computed per case
(`per_case`, over a `Derived`: the case, its scans in order, the adjudication instant;
Python values) and over a chunk of cases (`columns`, a Polars expression over the encoded
values the columnar backend holds, see types.py). Both are written here, next to each
other, as derivations.py does for the functions a pack calls; tests/test_derivations.py
runs every record both ways at its boundaries.

Many built-ins are read off the scan list. Their columnar spelling is then two parts:
`over_scans`, one aggregate per case over the exploded scan frame (one row per scan, the
case's facts named in `scan_reads` beside it), and `columns`, the row's value from that
aggregate and the row's facts. The scan frame holds each case's scans in `scan_order`, as
`Derived.scans` does, so `first()` and `last()` mean what they mean per case. A case without
scans has no row there: its aggregate is null, as each per-case spelling gives for no scans.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, NamedTuple

from .. import money
from ..case import contract as C
from . import types as T

Case = Any      # a validated case: facts.Case or fastcase.FastCase (same fields)
Scan = Any      # one of its scans


def scan_order(s: Scan, epoch: datetime = T.EPOCH) -> tuple:
    """Scans by instant, then type and station. The instant as its distance from the epoch: the
    order of T._encode_instant's integer (that distance in whole microseconds), without dividing."""
    return (s.at - epoch, s.type, s.station)


class Derived:
    """One case at one adjudication instant, as the per-case spellings read it."""

    def __init__(self, case: Case, as_of: datetime):
        self.case = case
        self.as_of = as_of
        self.scans = sorted(case.scans, key=scan_order)

    def first(self, kind: str, station: str | None = None) -> Scan | None:
        """The first scan of `kind` (at `station`, when given), in scan order."""
        for s in self.scans:
            if s.type == kind and (station is None or s.station == station):
                return s
        return None


_UNKNOWN = object()          # a value not looked for yet


def once_per_case(find: Callable[[Derived], Any]) -> Callable[[Derived], Any]:
    """A per-case spelling that several built-ins read, computed once per case (kept in the Derived)."""
    slot = f"_{find.__name__}_memo"

    def read(d: Derived) -> Any:
        memo = d.__dict__
        value = memo.get(slot, _UNKNOWN)        # no exception on the first read: that cost ~0.5 us a case
        if value is _UNKNOWN:
            value = memo[slot] = find(d)
        return value
    read.__name__ = read.__qualname__ = find.__name__
    read.__doc__ = find.__doc__
    return read


class Frame(NamedTuple):
    """What a columnar spelling reads, in the columnar reader's names (it makes one)."""

    pl: Any                              # the Polars module
    fact: Callable[[str], Any]           # a fact of the case by path (a base fact or a built-in named in `reads`)
    scan: Callable[[str], Any]           # in over_scans: a field of each scan (`at` in µs, `type`, `station`)


class Builtin(NamedTuple):
    """A built-in derived value: its fact type, per-case and columnar spellings, and what the latter reads."""

    name: str
    type: T.FactType | None      # None: a step other built-ins read (not a fact a rule may test)
    doc: str
    per_case: Callable[[Derived], Any]
    columns: Callable[[Frame, Any], Any]      # columns(c, aggregate) -> the row's value (aggregate: None without over_scans)
    over_scans: Callable[[Frame], Any] | None = None    # over_scans(c) -> one aggregate per case over its scans
    reads: tuple[str, ...] = ()  # built-ins and facts `columns` reads (a built-in is computed first)
    scan_reads: tuple[str, ...] = ()   # those `over_scans` reads: set beside each scan


def _at(s: Scan | None) -> datetime | None:
    return s.at if s else None


# ---- scans --------------------------------------------------------------------------------------

def _signed_at(d: Derived) -> datetime | None:
    return _at(d.first("signed"))


def _collected_at(d: Derived) -> datetime | None:
    return _at(d.first("collect") or (d.scans[0] if d.scans else None))


def _collected_at_scans(c: Frame) -> Any:
    at = c.scan("at")
    return c.pl.coalesce(at.filter(c.scan("type") == "collect").min(), at.min())


def _delivering_station(d: Derived) -> str | None:
    if d.case.stations and d.case.stations.delivering:
        return d.case.stations.delivering
    arrivals = [s for s in d.scans if s.type == "arrival"]
    return arrivals[-1].station if arrivals else None


def _last_arrival_station(c: Frame) -> Any:
    return c.scan("station").filter(c.scan("type") == "arrival").last()


@once_per_case                                      # two built-ins read it
def _reference_arrival_scan(d: Derived) -> Scan | None:
    """TB-1: earliest arrival at the delivering station, else the previous
    station's latest dispatch before the reference point (signing, else as_of)."""
    station = _delivering_station(d)
    if station is None:
        return None
    arrival = d.first("arrival", station)
    if arrival is not None:
        return arrival
    limit = _signed_at(d) or d.as_of
    dispatches = [s for s in d.scans if s.type == "dispatch" and s.station != station and s.at <= limit]
    return dispatches[-1] if dispatches else None


def _reference_candidates(c: Frame) -> Any:
    at, kind, station = c.scan("at"), c.scan("type"), c.scan("station")
    delivering = c.fact("delivering_station")
    limit = c.pl.coalesce(c.fact("signed_at"), c.fact("as_of"))
    return c.pl.struct(
        at.filter((kind == "arrival") & (station == delivering)).min().alias("arrival"),
        at.filter((kind == "dispatch") & (station != delivering) & (at <= limit)).max().alias("dispatch"))


def _reference_scan_columns(c: Frame, found: Any) -> Any:
    """The chosen scan as a struct of its instant and type (null where none)."""
    pl = c.pl
    arrival, dispatch = found.struct.field("arrival"), found.struct.field("dispatch")
    has_station = c.fact("delivering_station").is_not_null()
    return (pl.when(has_station & arrival.is_not_null()).then(pl.struct(arrival.alias("at"), pl.lit("arrival").alias("type")))
            .when(has_station & dispatch.is_not_null()).then(pl.struct(dispatch.alias("at"), pl.lit("dispatch").alias("type"))))


def _reference_arrival_source(d: Derived) -> str | None:
    s = _reference_arrival_scan(d)
    return s.type if s else None


# ---- the parcel's size and the charge -----------------------------------------------------------

_SIDES = ("parcel.length_cm", "parcel.width_cm", "parcel.height_cm")


@once_per_case                                      # three built-ins read it
def _sides(d: Derived) -> tuple | None:
    p = d.case.parcel
    if p is None:
        return None
    sides = (p.length_cm, p.width_cm, p.height_cm)
    return None if sides[0] is None or sides[1] is None or sides[2] is None else sides


def _longest_side(d: Derived) -> Any:
    sides = _sides(d)
    return max(sides) if sides else None


# exact whatever decimal context the caller set (money.EXACT), as money is
def _sum_of_sides(d: Derived) -> Any:
    sides = _sides(d)
    return money.add(money.add(sides[0], sides[1]), sides[2]) if sides else None


def _volume(d: Derived) -> Any:
    sides = _sides(d)
    return money.EXACT.multiply(money.EXACT.multiply(sides[0], sides[1]), sides[2]) if sides else None


def _when_all_sides(horizontal: str) -> Callable[[Frame, Any], Any]:
    """A sum or maximum of the three sides in their encoded unit (10^-2 cm): all three, or none."""
    def columns(c: Frame, _: Any) -> Any:
        sides = [c.fact(p) for p in _SIDES]
        return c.pl.when(c.pl.all_horizontal(s.is_not_null() for s in sides)).then(getattr(c.pl, horizontal)(sides))
    return columns


def _volume_columns(c: Frame, _: Any) -> Any:
    """10^-2 cm cubed is the volume's unit, 10^-6 cm³; under 2^63 for sides within the contract's bound."""
    length, width, height = (c.fact(p) for p in _SIDES)
    return length * width * height


def _overcharge(d: Derived) -> Any:
    c = d.case.collection
    if c is None or c.charged_cny is None or c.quoted_cny is None:
        return None
    return money.subtract(c.charged_cny, c.quoted_cny)


def _scan_aggregate(_: Frame, aggregate: Any) -> Any:
    return aggregate


BUILTINS: dict[str, Builtin] = {b.name: b for b in [
    Builtin("signed_at", T.INSTANT, "earliest signed scan", _signed_at, _scan_aggregate,
            lambda c: c.scan("at").filter(c.scan("type") == "signed").min()),
    Builtin("collected_at", T.INSTANT, "collect scan, else the earliest scan", _collected_at, _scan_aggregate,
            _collected_at_scans),
    Builtin("delivering_station", T.TEXT, "stations.delivering, else the station of the last arrival scan",
            _delivering_station, lambda c, last: c.pl.coalesce(c.fact("stations.delivering"), last),
            _last_arrival_station, reads=("stations.delivering",)),
    Builtin("reference_arrival_scan", None, "the scan TB-1 takes as the reference arrival",
            _reference_arrival_scan, _reference_scan_columns, _reference_candidates,
            ("delivering_station",), ("delivering_station", "signed_at", "as_of")),
    Builtin("reference_arrival", T.INSTANT, "TB-1 reference arrival",
            lambda d: _at(_reference_arrival_scan(d)),
            lambda c, _: c.fact("reference_arrival_scan").struct.field("at"), reads=("reference_arrival_scan",)),
    Builtin("reference_arrival_source", T.enum_type(C.REFERENCE_SOURCES), "which scan gave reference_arrival",
            _reference_arrival_source,
            lambda c, _: c.fact("reference_arrival_scan").struct.field("type"), reads=("reference_arrival_scan",)),
    Builtin("longest_side_cm", T.LENGTH, "", _longest_side, _when_all_sides("max_horizontal"), reads=_SIDES),
    Builtin("sum_of_sides_cm", T.LENGTH, "", _sum_of_sides, _when_all_sides("sum_horizontal"), reads=_SIDES),
    Builtin("volume_cm3", T.VOLUME, "", _volume, _volume_columns, reads=_SIDES),
    Builtin("overcharge_cny", T.MONEY, "charged minus quoted (may be zero or negative)", _overcharge,
            lambda c, _: c.fact("collection.charged_cny") - c.fact("collection.quoted_cny"),
            reads=("collection.charged_cny", "collection.quoted_cny")),
]}


def stages(records: list[Builtin], given: set[str]) -> list[list[Builtin]]:
    """The records in passes: each pass reads only facts `given` or computed in an earlier pass
    (a columnar reader computes one pass with one group-by over the scans)."""
    have, pending, out = set(given), list(records), []
    while pending:
        ready = [b for b in pending if all(r in have for r in (*b.reads, *b.scan_reads))]
        if not ready:
            raise ValueError(f"built-ins reading what nothing computes: {', '.join(b.name for b in pending)}")
        out.append(ready)
        have.update(b.name for b in ready)
        pending = [b for b in pending if b not in ready]
    return out
