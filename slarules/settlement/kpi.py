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

import math
from datetime import timedelta
from decimal import Decimal

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

    c = lambda name: pl.col(col(f"complaint.{name}"))
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


def share_of(part: int, whole: int) -> str:
    """A share with its count, "100% of 1": a share alone hides that it rests on one parcel.

    Rounded, but never to 0% or 100% unless it is exactly that (1,999 of 2,000 is ">99%").
    """
    if not whole:
        return ""
    percent = round(100 * part / whole)
    shown = ("<1%" if percent == 0 and part else ">99%" if percent == 100 and part < whole else f"{percent}%")
    return f"{shown} of {whole:,}"


# -- the report's section -------------------------------------------------------------------
AGENTS_SHOWN = 25       # the report ranks this many best and this many worst agents (all when fewer)
_LABELS = {"connection_rate": "call connection", "resolution_rate": "resolution", "fcr": "first-contact resolution",
           "csat": "CSAT", "aht_minutes": "handling time", "complaint_handling_minutes": "complaint handling"}


def _fraction(counters: dict[str, int], indicator: tuple) -> float | None:
    _, num, den, unit, _ = indicator
    return counters[num] / (counters[den] * unit) if counters[den] else None


def _cell(counters: dict[str, int], indicator: tuple, network: dict[str, int], top: float) -> str:
    """A value with what it rests on, and a small bar with the network's value as a tick.

    "100% of 3" beside "92% of 3,000": a rate over 3 contacts must not pass for one over thousands.
    """
    import html

    name, num, den, _, _ = indicator
    n = counters[den]
    if not n:
        return "<td class=none>none</td>"
    mine, theirs = _fraction(counters, indicator), _fraction(network, indicator)
    if name.endswith("_minutes"):
        text = f"{value(counters, indicator)} min over {n:,}"
    else:
        text = share_of(counters[num], n)
    width = 60
    # `mine` is a number: its denominator `n` is not zero
    bar = f'<rect x="0" y="2" width="{width * max(mine, 0) / top:.1f}" height="8" fill="#4a78b5"/>'  # type: ignore[operator,type-var]
    tick = (f'<rect x="{width * max(theirs, 0) / top:.1f}" y="0" width="1.5" height="12" fill="#c0392b"/>'
            if theirs is not None else "")
    return (f'<td><svg width="{width + 2}" height="12" role="img" aria-label="{html.escape(text)}">{bar}{tick}</svg> '
            f"{html.escape(text)}</td>")


def _kpi_table(first: str, named: list[tuple[str, dict[str, int]]], network: dict[str, int]) -> str:
    import html
    tops = []
    for indicator in INDICATORS:
        values = [_fraction(v, indicator) for _, v in named + [("", network)] if v is not None]
        tops.append(1.0 if indicator[4] == 4 else max([abs(x) for x in values if x is not None] + [1e-9]))
    head = "".join(f"<th>{h}</th>" for h in [first, "contacts"] + [_LABELS[i[0]] for i in INDICATORS])
    body = []
    for label, v in named:
        if v is None:          # the gap between the best and the worst agents
            body.append(f'<tr><td colspan="{2 + len(INDICATORS)}" class=gap>{html.escape(label)}</td></tr>')
            continue
        cells = "".join(_cell(v, i, network, top) for i, top in zip(INDICATORS, tops))
        body.append(f"<tr><th>{html.escape(label)}</th><td>{v['contacts']:,}</td>{cells}</tr>")
    return f"<table class=kpi><tr>{head}</tr>{''.join(body)}</table>"


def wilson_lower(hits: int, total: int, z: float = 1.96) -> float:
    """The lower end of a rate's 95% Wilson interval: how sure the rate is, for ranking small samples fairly."""
    if total <= 0:
        return 0.0
    p = hits / total
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (p + z * z / (2 * total) - spread) / (1 + z * z / total)


def report_section(table: dict[str, dict[str, dict[str, int]]]) -> str:
    """The report's KPIs: each team against the network, then agents ranked by resolution rate."""
    network = table.get(ALL, {}).get(ALL)
    if network is None:
        return "<h2>Customer-service KPIs</h2><p>no contacts (cases with a complaint block)</p>"
    parts = ["<h2>Customer-service KPIs</h2>",
             ("<p>Each figure with what it rests on: a rate over 3 contacts is not one over 3,000. "
              "Bars show the row's value; the red tick is the network's. Every agent, team and station is in "
              "<code>kpi.csv</code>; the definitions are in docs/policy.md (KPI).</p>"),
             "<h3>Teams against the network</h3>",
             _kpi_table("team", [("network", network)] + sorted(table.get("team", {}).items()), network)]
    agents = table.get("agent", {})
    if agents:
        resolution = INDICATORS[1]
        ranked = sorted(agents.items(), key=lambda kv: (-wilson_lower(kv[1][resolution[1]], kv[1][resolution[2]]),
                                                        -kv[1]["contacts"], kv[0]))
        shown: list = ranked
        if len(ranked) > 2 * AGENTS_SHOWN:
            shown = (ranked[:AGENTS_SHOWN] + [(f"… {len(ranked) - 2 * AGENTS_SHOWN:,} more agents in kpi.csv …", None)]
                     + ranked[-AGENTS_SHOWN:])
        parts += [f"<h3>Agents by resolution rate ({len(agents):,})</h3>",
                  ("<p>Ranked by the rate's 95% lower bound (Wilson), so 3 of 3 does not outrank 2,000 of 3,000; "
                   "the rate shown is the plain one.</p>"),
                  _kpi_table("agent", shown, network)]
    return "\n".join(parts)
