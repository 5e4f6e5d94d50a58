"""Customer-service KPIs (docs/policy.md, "KPI"): what each counts, once, for both batch paths.

A *contact* is a case with a `complaint` block. Each contact adds integer
counters to its agent, its team, its delivering station and `all`; the
indicators are ratios of those sums, computed only when the statement is
written. Integers (minutes in hundredths, durations in microseconds) merge
exactly, so any split of the input, any resume and any Spark partitioning give
the same `kpi.csv` bytes.

`contact_counts` is the definition for one case (the per-case path);
`columnar_counts` is the same definition as Polars expressions over a chunk
(the columnar path). tests/test_kpi.py holds them equal.
"""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any, Iterable

GROUPS = ("agent", "team", "station")     # and "all", every contact under the key "all"
ALL = "all"
COUNTERS = ("contacts", "calls", "connected", "closed", "fcr_given", "fcr_yes", "csat_given", "csat_yes",
            "handled", "handling_centiminutes", "complaints_closed", "complaint_microseconds")
# (kpi.csv column, numerator counter, denominator counter, numerator units per shown unit, decimals)
INDICATORS = (
    ("connection_rate", "connected", "calls", 1, 4),
    ("resolution_rate", "closed", "contacts", 1, 4),
    ("fcr", "fcr_yes", "fcr_given", 1, 4),
    ("csat", "csat_yes", "csat_given", 1, 4),
    ("aht_minutes", "handling_centiminutes", "handled", 100, 1),
    ("complaint_handling_minutes", "complaint_microseconds", "complaints_closed", 60_000_000, 1),
)
HEADER = ["group", "key", "contacts", "calls"] + [name for name, *_ in INDICATORS]
_MICROSECOND = timedelta(microseconds=1)


def empty() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


def contact_counts(complaint, as_of) -> dict[str, int]:
    """The counters one contact adds (facts.Case's or FastCase's complaint block, and the verdict's as_of)."""
    c = complaint
    call = c.channel == "phone" and (c.rings is not None or c.connected_at is not None)
    closed = c.closed_at is not None and c.closed_at <= as_of
    timed = closed and c.kind == "complaint" and c.received_at is not None
    return {"contacts": 1, "calls": int(call), "connected": int(call and c.connected_at is not None),
            "closed": int(closed),
            "fcr_given": int(c.resolved_first_contact is not None), "fcr_yes": int(c.resolved_first_contact is True),
            "csat_given": int(c.satisfied is not None), "csat_yes": int(c.satisfied is True),
            "handled": int(c.handling_minutes is not None),
            "handling_centiminutes": int(c.handling_minutes * 100) if c.handling_minutes is not None else 0,
            "complaints_closed": int(timed),
            "complaint_microseconds": (c.closed_at - c.received_at) // _MICROSECOND if timed else 0}


def keys_of(complaint, station: str | None) -> list[tuple[str, str]]:
    """The (group, key) pairs a contact counts under: its agent, team and station when known, and `all`."""
    return [(g, k) for g, k in zip(GROUPS, (complaint.agent, complaint.team, station)) if k is not None] + [(ALL, ALL)]


def columnar_counts(f, col) -> list[tuple[str, str, dict[str, int]]]:
    """`contact_counts` summed by group over a chunk's columns: (group, key, counters).

    `f` is the columnar path's frame (encoded base facts: instants in µs, handling
    minutes in hundredths) and `col(path)` names a fact's column.
    """
    from ..runtime._polars import pl

    c = lambda name: pl.col(col(f"complaint.{name}"))  # noqa: E731
    call = (c("channel") == "phone") & (c("rings").is_not_null() | c("connected_at").is_not_null())
    closed = (c("closed_at") <= pl.col(col("as_of"))).fill_null(False)
    timed = closed & (c("kind") == "complaint").fill_null(False) & c("received_at").is_not_null()
    flags = {"calls": call.fill_null(False), "connected": call.fill_null(False) & c("connected_at").is_not_null(),
             "closed": closed, "fcr_given": c("resolved_first_contact").is_not_null(),
             "fcr_yes": c("resolved_first_contact").fill_null(False),
             "csat_given": c("satisfied").is_not_null(), "csat_yes": c("satisfied").fill_null(False),
             "handled": c("handling_minutes").is_not_null(),
             "handling_centiminutes": c("handling_minutes").fill_null(0),
             "complaints_closed": timed,
             "complaint_microseconds": pl.when(timed).then(c("closed_at") - c("received_at")).otherwise(0)}
    keys = {"agent": c("agent"), "team": c("team"), "station": pl.col(col("delivering_station"))}
    rows = (f.lazy().filter(pl.col(col("complaint")).is_not_null())
            .select(*[e.alias(g) for g, e in keys.items()], *[e.cast(pl.Int64).alias(n) for n, e in flags.items()])
            .collect())
    sums = [pl.len().alias("contacts")] + [pl.col(n).sum() for n in flags]
    out = []
    for group in GROUPS:
        for row in rows.filter(pl.col(group).is_not_null()).group_by(group).agg(sums).iter_rows(named=True):
            k = row.pop(group)
            out.append((group, k, {n: int(row[n]) for n in COUNTERS}))
    if rows.height:
        out.append((ALL, ALL, {n: int(v) for n, v in rows.select(sums).row(0, named=True).items()}))
    return out


def half_up(numerator: int, denominator: int, places: int) -> str:
    """numerator / denominator to `places` decimals, halves away from zero, exactly (integers only)."""
    scaled = abs(numerator) * 10 ** places
    q, r = divmod(scaled, abs(denominator))
    q += 2 * r >= abs(denominator)
    negative = (numerator < 0) != (denominator < 0) and q
    return f"{'-' if negative else ''}{Decimal(q).scaleb(-places):.{places}f}"


def value(counters: dict[str, int], indicator: tuple) -> str:
    """One indicator of some counters as kpi.csv writes it; empty when nothing counts."""
    _, num, den, unit, places = indicator
    return half_up(counters[num], counters[den] * unit, places) if counters[den] else ""


def rows(table: dict[str, dict[str, dict[str, int]]]) -> list[list[str]]:
    """kpi.csv's rows (without the header) of {group: {key: counters}}, sorted by group then key."""
    return [[group, k, str(v["contacts"]), str(v["calls"])] + [value(v, i) for i in INDICATORS]
            for group, keys in sorted(table.items()) for k, v in sorted(keys.items())]


def kpi_table(results: Iterable[tuple[Any, Any]]) -> list[dict[str, str]]:
    """The KPIs of `Engine.adjudicate_many`'s results, as kpi.csv has them: one dict per row.

    Errors (no facts) are skipped, as a batch skips rejected rows.
    """
    from .statement import Statement
    st = Statement()
    for facts, verdict in results:
        if facts is not None and not isinstance(verdict, Exception):
            st.add(facts, verdict)
    return [dict(zip(HEADER, r)) for r in rows(st.kpi)]
